"""Faithfulness: how much of the class score depends on the cells an explanation selects.

Deletion/insertion curves remove or add the most salient cells of the log-mel step by step;
`kept_probability` re-classifies reconstructed audio through the whole pipeline.
"""

from __future__ import annotations

import numpy as np

from asf_jax.audio import window_starts
from asf_jax.classifier import Classifier
from asf_jax.explain.saliency import Saliency, windows


def removed_value(logmel: np.ndarray, baseline: str, log_offset: float) -> float:
    """What a removed cell becomes: the clip's mean log-mel ("mean") or the log floor ("floor")."""
    if baseline == "mean":
        return float(logmel.mean())
    if baseline == "floor":
        return float(np.log(log_offset))
    raise ValueError(f"baseline must be 'mean' or 'floor', got {baseline!r}")


def class_score(classifier: Classifier, logmels: np.ndarray, targets: tuple[int, ...],
                window_hop: float = 0.5) -> np.ndarray:
    """(n, frames, mel) recordings -> (n,) summed target probability, mean over windows."""
    window = classifier.config.num_frames
    starts = window_starts(logmels.shape[1], window, round(window * window_hop))
    x = np.concatenate([windows(lm, starts, window) for lm in logmels])
    probabilities = classifier.probabilities(x)[:, list(targets)].sum(axis=-1)
    return probabilities.reshape(len(logmels), len(starts)).mean(axis=1)


def deletion_insertion(classifier: Classifier, explained: Saliency, steps: int = 11,
                       baseline: str = "mean") -> dict[str, list[float] | float]:
    """Target probability as the most salient cells are removed (deletion) or added (insertion).

    Removed cells take `removed_value(baseline)`; areas are trapezoid AUCs over the removed/added
    fraction in [0, 1] (deletion: lower is more faithful; insertion: higher is).
    """
    logmel = explained.logmel
    fill = removed_value(logmel, baseline, classifier.recipe.log_offset)
    fractions = np.linspace(0, 1, steps)
    order = np.argsort(np.argsort(-explained.saliency, axis=None, kind="stable")).reshape(
        logmel.shape)  # rank of every cell, 0 = most salient
    top = [order < round(f * logmel.size) for f in fractions]
    deleted = np.stack([np.where(t, fill, logmel) for t in top])
    inserted = np.stack([np.where(t, logmel, fill) for t in top])
    scores = class_score(classifier, np.concatenate([deleted, inserted]), explained.targets)
    deletion, insertion = scores[:steps], scores[steps:]
    return {"fractions": fractions.tolist(), "deletion": deletion.tolist(),
            "insertion": insertion.tolist(), "baseline": baseline,
            "deletion_auc": float(np.trapezoid(deletion, fractions)),
            "insertion_auc": float(np.trapezoid(insertion, fractions))}


def kept_probability(classifier: Classifier, reference: float,
                     reconstructions: dict[str, np.ndarray], targets: tuple[int, ...]
                     ) -> dict[str, dict[str, float]]:
    """Re-classify audio through the full pipeline (`Classifier.predict`): target probability kept.

    `kept` is a reconstruction's target probability over `reference`, the original's.
    """
    result = {}
    for name, samples in reconstructions.items():
        probability = float(classifier.predict(samples)[list(targets)].sum())
        result[name] = {"probability": probability, "kept": probability / max(reference, 1e-12)}
    return result
