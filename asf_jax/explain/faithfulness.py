"""Faithfulness: how much of the class score depends on the cells an explanation selects.

The masked input is scored twice: with only the selected part kept ("masked-in") and with it
removed ("masked-out"), either on the log-mel (a removal operator fills what is taken away: the
clip's mean log-mel, `mean`, or the mel magnitude scaled by the mask, so removed cells fall to
digital silence, `floor`) or as the resynthesised audio the user hears, re-classified through the
whole pipeline. From the target probability p of the original, o of the masked-in and r of the
masked-out input, per clip (means over clips are reported; L-MAC, Paissan et al., ICML 2024,
Sec. 4, with its reference code in SpeechBrain's ESC50 interpret recipe):

- AI, average increase (Chattopadhay et al., "Grad-CAM++", WACV 2018): 100 · [o > p].
- AD, average drop (ibid.): 100 · max(0, p − o) / p; lower is better.
- AG, average gain (Zhang et al., "Opti-CAM", 2024): 100 · max(0, o − p) / (1 − p).
- FF, faithfulness on spectra (Parekh et al., "Listen to interpret", NeurIPS 2022): p − r.
- Fid-In, input fidelity (Paissan et al., 2023; L-MAC): 1 if the masked-in input is classified
  as the explained class (L-MAC compares with the original's prediction, which is the explained
  class unless another target was chosen).

Threshold-free: deletion/insertion curves (Petsiuk et al., "RISE", BMVC 2018) remove or add the
most salient cells step by step. About the map itself: sparseness, the Gini index of the map
(Chalasani et al., ICML 2020; higher: more concentrated), and complexity, the entropy of the
map as a distribution (Bhatt et al., IJCAI 2020; lower: simpler), both as Quantus computes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asf_jax.audio import logmel_views, window_starts
from asf_jax.classifier import Classifier
from asf_jax.explain.objectives import Target, target_arrays
from asf_jax.explain.perturbation import keep
from asf_jax.explain.saliency import Saliency, windows

OPERATORS = ("mean", "floor")
LMAC_METRICS = ("AI", "AD", "AG", "FF", "FidIn")


def masked(logmel: np.ndarray, masks: np.ndarray, operator: str, log_offset: float
           ) -> np.ndarray:
    """(frames, mel) log-mel under (n, frames, mel) masks in [0, 1] -> (n, frames, mel): only
    the masked part kept, the rest filled by the removal `operator`."""
    if operator not in OPERATORS:
        raise ValueError(f"removal operator must be one of {OPERATORS}, got {operator!r}")
    masks = np.asarray(masks, np.float32)
    stacked = np.broadcast_to(np.asarray(logmel, np.float32), masks.shape)
    return np.asarray(keep(stacked, masks, operator, log_offset))


def window_probabilities(classifier: Classifier, logmels: np.ndarray, window_hop: float = 0.5
                         ) -> np.ndarray:
    """(n, frames, mel) recordings -> (n, classes) softmax, averaged over overlapping windows."""
    window = classifier.config.num_frames
    starts = window_starts(logmels.shape[1], window, round(window * window_hop))
    x = np.concatenate([windows(lm, starts, window, classifier.recipe) for lm in logmels])
    probabilities = classifier.probabilities(x)
    return probabilities.reshape(len(logmels), len(starts), -1).mean(axis=1)


def class_score(classifier: Classifier, logmels: np.ndarray, targets: tuple[int, ...],
                window_hop: float = 0.5) -> np.ndarray:
    """(n, frames, mel) recordings -> (n,) summed target probability, mean over windows."""
    return window_probabilities(classifier, logmels, window_hop)[:, list(targets)].sum(axis=-1)


def view_scores(classifier: Classifier, x: np.ndarray, target: Target) -> np.ndarray:
    """(n, frames, mel) network inputs -> (n,) faithfulness score of `target`: the summed
    probability of its classes, or for a text target the cosine of the projection with the
    text (a contrast is not subtracted: these scores say how much of the target is kept)."""
    if target.text is None:
        return classifier.probabilities(x)[:, list(target.classes)].sum(axis=-1)
    text = np.asarray(target_arrays(classifier, Target(text=target.text)).text)
    projection = classifier.project(x)
    return projection @ text / np.maximum(np.linalg.norm(projection, axis=-1), 1e-12)


def target_scores(classifier: Classifier, logmels: np.ndarray, target: Target,
                  window_hop: float = 0.5) -> np.ndarray:
    """(n, frames, mel) recordings -> (n,) `view_scores`, mean over overlapping windows."""
    window = classifier.config.num_frames
    starts = window_starts(logmels.shape[1], window, round(window * window_hop))
    x = np.concatenate([windows(lm, starts, window, classifier.recipe) for lm in logmels])
    return view_scores(classifier, x, target).reshape(len(logmels), len(starts)).mean(axis=1)


def audio_score(classifier: Classifier, samples: np.ndarray, target: Target) -> float:
    """`view_scores` of audio through the whole pipeline (the recipe's test views, averaged)."""
    views = logmel_views(samples, classifier.recipe.sample_rate, recipe=classifier.recipe)
    return float(view_scores(classifier, views, target).mean())


# ------------------------------------------------------------------------------------------------
# Metrics of one masked-in / masked-out pair (per clip; average over clips).
# ------------------------------------------------------------------------------------------------


def average_increase(original: float, kept: float) -> float:
    return 100.0 * float(kept > original)


def average_drop(original: float, kept: float) -> float:
    return 100.0 * max(0.0, original - kept) / max(original, 1e-12)


def average_gain(original: float, kept: float) -> float:
    return 100.0 * max(0.0, kept - original) / max(1.0 - original, 1e-12)


def faithfulness_on_spectra(original: float, removed: float) -> float:
    return original - removed


def input_fidelity(kept_probabilities: np.ndarray, targets: Sequence[int]) -> float:
    return float(int(np.argmax(kept_probabilities)) in set(targets))


def lmac_metrics(original: np.ndarray, kept: np.ndarray, removed: np.ndarray,
                 targets: Sequence[int]) -> dict[str, float]:
    """AI, AD, AG, FF and Fid-In of one clip from the (classes,) probabilities of the original,
    the masked-in and the masked-out input."""
    p, o, r = (float(np.asarray(v)[list(targets)].sum()) for v in (original, kept, removed))
    return {"AI": average_increase(p, o), "AD": average_drop(p, o), "AG": average_gain(p, o),
            "FF": faithfulness_on_spectra(p, r), "FidIn": input_fidelity(kept, targets)}


def sparseness(saliency: np.ndarray) -> float:
    """Gini index of |saliency| (Chalasani et al., 2020), as Quantus: 0 flat, -> 1 one cell."""
    values = np.sort(np.abs(np.ravel(saliency)).astype(np.float64) + 1e-7)
    n = values.size
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * values) / (n * values.sum()))


def complexity(saliency: np.ndarray) -> float:
    """Entropy (nats) of |saliency| / Σ|saliency| (Bhatt et al., 2020): log(cells) for a flat
    map, 0 for one cell."""
    values = np.abs(np.ravel(saliency)).astype(np.float64)
    total = values.sum()
    if total <= 0:
        return float(np.log(values.size))
    p = values[values > 0] / total
    return float(-(p * np.log(p)).sum())


# ------------------------------------------------------------------------------------------------
# On a model.
# ------------------------------------------------------------------------------------------------


def logmel_metrics(classifier: Classifier, explained: Saliency, mask: np.ndarray,
                   operators: Sequence[str] = OPERATORS, window_hop: float = 0.5
                   ) -> dict[str, dict[str, float]]:
    """L-MAC's metrics of `mask` on the log-mel, per removal operator; the masked-in and
    masked-out inputs of every operator are classified in one batch."""
    recipe = classifier.recipe
    inputs = [explained.logmel[None]]
    for operator in operators:
        inputs.append(masked(explained.logmel, np.stack([mask, 1 - mask]), operator,
                             recipe.log_offset))
    probabilities = window_probabilities(classifier, np.concatenate(inputs), window_hop)
    original = probabilities[0]
    return {operator: lmac_metrics(original, probabilities[1 + 2 * i], probabilities[2 + 2 * i],
                                   explained.targets)
            for i, operator in enumerate(operators)}


def deletion_insertion(classifier: Classifier, explained: Saliency, steps: int = 11,
                       baseline: str = "mean") -> dict[str, list[float] | float | str]:
    """Target probability as the most salient cells are removed (deletion) or added (insertion).

    Removed cells are filled by the removal operator `baseline`; areas are trapezoid AUCs over
    the removed/added fraction in [0, 1] (deletion: lower is more faithful; insertion: higher).
    """
    logmel = explained.logmel
    fractions = np.linspace(0, 1, steps)
    order = np.argsort(np.argsort(-explained.saliency, axis=None, kind="stable")).reshape(
        logmel.shape)  # rank of every cell, 0 = most salient
    top = np.stack([order < round(f * logmel.size) for f in fractions]).astype(np.float32)
    inputs = masked(logmel, np.concatenate([1 - top, top]), baseline,
                    classifier.recipe.log_offset)
    scores = target_scores(classifier, inputs, explained.target)
    deletion, insertion = scores[:steps], scores[steps:]
    return {"fractions": fractions.tolist(), "deletion": deletion.tolist(),
            "insertion": insertion.tolist(), "baseline": baseline,
            "deletion_auc": float(np.trapezoid(deletion, fractions)),
            "insertion_auc": float(np.trapezoid(insertion, fractions))}


def audio_faithfulness(classifier: Classifier, audios: dict[str, np.ndarray], target: Target,
                       original: np.ndarray | None, logmel: np.ndarray) -> dict:
    """Re-classified reconstructions (`salient`, `complement`, and any others such as `random`):
    `kept` (each one's score over the original's) and, for a class target, `lmac` (L-MAC's
    metrics of the salient audio as masked-in and the complement as masked-out input).

    The original is the `original` audio through the whole pipeline, or without it the log-mel
    windows it was explained on.
    """
    if target.text is not None:
        reference = (audio_score(classifier, original, target) if original is not None
                     else float(target_scores(classifier, logmel[None], target)[0]))
        return {"reference": reference,
                "kept": kept_probability(classifier, reference, audios, target)}
    classes = list(target.classes)
    reference_probabilities = (classifier.predict(original) if original is not None
                               else window_probabilities(classifier, logmel[None])[0])
    probabilities = {name: classifier.predict(samples) for name, samples in audios.items()}
    reference = float(reference_probabilities[classes].sum())
    kept = {name: {"probability": float(p[classes].sum()),
                   "kept": float(p[classes].sum()) / max(reference, 1e-12)}
            for name, p in probabilities.items()}
    return {"reference": reference, "kept": kept,
            "lmac": lmac_metrics(reference_probabilities, probabilities["salient"],
                                 probabilities["complement"], classes)}


def kept_probability(classifier: Classifier, reference: float,
                     reconstructions: dict[str, np.ndarray], target: Target | tuple[int, ...]
                     ) -> dict[str, dict[str, float]]:
    """Re-classify audio through the full pipeline: the target's score kept.

    `kept` is a reconstruction's score (`audio_score`: the target probability, or a text
    target's cosine) over `reference`, the original's.
    """
    target = target if isinstance(target, Target) else Target(tuple(target))
    result = {}
    for name, samples in reconstructions.items():
        score = audio_score(classifier, samples, target)
        result[name] = {"probability": score, "kept": score / max(reference, 1e-12)}
    return result
