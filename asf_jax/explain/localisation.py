"""Does a saliency map point at the sound? Scores against a known event, with chance levels.

The ground truth is where an event was placed (`event_frames`, the frames of its span) and the
cells where it is louder than the background (`event_cells`, time x mel); see
asf_jax/explain/mixtures.py. Each metric is computed on the time profile (the map summed over mel
bands, against the span) and on the cells (against the event's cells):

- relevance mass: the share of the saliency inside the ground truth (Arras et al., "CLEVR-XAI",
  Information Fusion 2022); chance: the ground truth's share of frames (cells).
- relevance rank accuracy: the share of the K most salient frames (cells) inside the ground
  truth, K its size (Arras et al., 2022); chance: as for mass.
- pointing game: whether the most salient frame (cell) is inside (Zhang et al., "Top-down neural
  attention by excitation backprop", ECCV 2016); chance: as for mass.
- AUROC of the saliency as a detector of the ground truth; chance 0.5.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

METRICS = ("mass", "rank", "pointing", "auroc")


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean `positive` labels (ties count half),
    by the Mann-Whitney U statistic; 0.5 when either class is empty."""
    scores, positive = np.ravel(scores), np.ravel(positive).astype(bool)
    num_positive = int(positive.sum())
    num_negative = positive.size - num_positive
    if not num_positive or not num_negative:
        return 0.5
    ranks = scipy.stats.rankdata(scores)
    u = ranks[positive].sum() - num_positive * (num_positive + 1) / 2
    return float(u / (num_positive * num_negative))


def relevance_mass(saliency: np.ndarray, truth: np.ndarray) -> float:
    """Σ saliency inside / Σ saliency (saliency >= 0); the chance level for a flat map."""
    total = float(saliency.sum())
    return float(saliency[truth].sum()) / total if total > 0 else float(truth.mean())


def rank_accuracy(saliency: np.ndarray, truth: np.ndarray) -> float:
    """Share of the K = |truth| highest values that lie inside the truth (ties: first position)."""
    count = int(truth.sum())
    if count == 0:
        return 0.0
    top = np.argsort(-saliency, axis=None, kind="stable")[:count]
    return float(np.ravel(truth)[top].mean())


def pointing(saliency: np.ndarray, truth: np.ndarray) -> float:
    """1.0 if the maximum (first, if tied) lies inside the truth, else 0.0."""
    return float(np.ravel(truth)[int(np.argmax(saliency))])


def scores(saliency: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The four metrics of a non-negative map against a boolean truth of the same shape, and the
    chance levels (`chance_mass` etc.)."""
    truth = truth.astype(bool)
    chance = float(truth.mean())
    return {"mass": relevance_mass(saliency, truth), "rank": rank_accuracy(saliency, truth),
            "pointing": pointing(saliency, truth), "auroc": auroc(saliency, truth),
            "chance_mass": chance, "chance_rank": chance, "chance_pointing": chance,
            "chance_auroc": 0.5}


def localisation(saliency: np.ndarray, event_frames: np.ndarray, event_cells: np.ndarray
                 ) -> dict[str, float]:
    """(frames, mel) saliency >= 0 against the event's (frames,) span and (frames, mel) cells:
    `time_<metric>` on the time profile, `tf_<metric>` on the cells (and their chance levels)."""
    saliency = np.maximum(np.asarray(saliency, np.float64), 0)
    time = {f"time_{k}": v for k, v in scores(saliency.sum(axis=1), event_frames).items()}
    cells = {f"tf_{k}": v for k, v in scores(saliency, event_cells).items()}
    return time | cells
