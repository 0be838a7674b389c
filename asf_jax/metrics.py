"""Clip-level evaluation metrics of the VGG-Sound protocol (DESIGN.md, "Evaluation").

Inputs are `scores` (clips, classes): softmax probabilities summed or averaged over a clip's test
views, and integer `labels` (clips,). AP and ROC AUC are computed for all classes at once in numpy
(one sort per class column) and agree with scikit-learn's `average_precision_score` and
`roc_auc_score`, ties included. A class with no positive clip in the evaluated set has no AP or
AUC; it is skipped in mAP and mean AUC (and left blank in the per-class table), as scikit-learn
would warn and return a meaningless number for it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from scipy import stats

PER_CLASS_FIELDS = ("index", "class", "support", "ap", "auc", "accuracy")


def _check(scores: np.ndarray, labels: np.ndarray, num_classes: int
           ) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape[1] != num_classes:
        raise ValueError(f"expected scores of shape (clips, {num_classes}), got {scores.shape}")
    if labels.shape != scores.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected {len(scores)} integer labels, got {labels.dtype} "
                         f"{labels.shape}")
    if len(labels) == 0:
        raise ValueError("no clips to evaluate")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min()}.."
                         f"{labels.max()}")
    if not np.all(np.isfinite(scores)) or scores.min() < 0:
        raise ValueError("scores must be finite softmax probabilities (summed or averaged "
                         "over views), not logits")
    return scores, labels


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(clips,) integer labels -> (clips, classes) boolean targets."""
    return np.asarray(labels)[:, None] == np.arange(num_classes)


def average_precision(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(classes,) AP of each column of boolean `targets` vs `scores`; NaN without positives.

    AP = mean over positives of the precision at the positive's threshold; a tie group shares
    one threshold (its last position), exactly like `sklearn.metrics.average_precision_score`.
    """
    order = np.argsort(-scores, axis=0, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=0)
    hits = np.take_along_axis(targets, order, axis=0)
    true_positives = np.cumsum(hits, axis=0)
    position = np.arange(1, len(scores) + 1)[:, None]
    precision = true_positives / position
    # Index of the last member of each row's tie group: a reverse running minimum of the
    # indices where the score changes.
    group_ends = np.where(np.diff(ranked, axis=0, append=-np.inf) != 0, position - 1, len(scores))
    group_ends = np.minimum.accumulate(group_ends[::-1], axis=0)[::-1]
    precision_at_threshold = np.take_along_axis(precision, group_ends, axis=0)
    positives = true_positives[-1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.sum(precision_at_threshold * hits, axis=0) / positives
    return np.where(positives > 0, ap, np.nan)


def roc_auc(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(classes,) ROC AUC of each column; NaN for columns without positives or negatives.

    The Mann-Whitney form with average ranks (a tie counts one half), which equals the trapezoidal
    area `sklearn.metrics.roc_auc_score` computes.
    """
    ranks = stats.rankdata(scores, axis=0)
    positives = targets.sum(axis=0).astype(np.float64)
    negatives = len(scores) - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((np.sum(ranks * targets, axis=0) - positives * (positives + 1) / 2)
               / (positives * negatives))
    return np.where((positives > 0) & (negatives > 0), auc, np.nan)


def top_k_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(clips,) whether the label is among the k best classes; a tie counts against the label."""
    label_scores = np.take_along_axis(scores, labels[:, None], axis=1)
    rivals = np.sum(scores >= label_scores, axis=1) - 1
    return rivals < k


def d_prime(auc: float) -> float:
    """Sensitivity index √2·Φ⁻¹(AUC): the AUC of two unit Gaussians that are d′ apart."""
    return float(np.sqrt(2.0) * stats.norm.ppf(auc))


def compute_metrics(scores: np.ndarray, labels: np.ndarray, num_classes: int
                    ) -> dict[str, float]:
    """top1, top5, map, auc (mean), dprime, loss (mean cross-entropy), clips, classes_scored.

    The loss uses the view-averaged probabilities (each row of `scores` renormalised to sum 1).
    """
    scores, labels = _check(scores, labels, num_classes)
    targets = one_hot(labels, num_classes)
    ap, auc = average_precision(targets, scores), roc_auc(targets, scores)
    mean_auc = float(np.nanmean(auc))
    probabilities = scores / scores.sum(axis=1, keepdims=True)
    label_probability = probabilities[np.arange(len(labels)), labels]
    return {
        "top1": float(top_k_correct(scores, labels, 1).mean()),
        "top5": float(top_k_correct(scores, labels, 5).mean()),
        "map": float(np.nanmean(ap)),
        "auc": mean_auc,
        "dprime": d_prime(mean_auc),
        "loss": float(-np.mean(np.log(np.maximum(label_probability, np.finfo(float).tiny)))),
        "clips": float(len(labels)),
        "classes_scored": float(np.sum(~np.isnan(ap))),
    }


def per_class_metrics(scores: np.ndarray, labels: np.ndarray, class_names: list[str]
                      ) -> list[dict]:
    """One row per class: index, class, support, ap, auc, accuracy (top-1 recall of the class).

    Classes without clips have support 0 and NaN for the rest.
    """
    scores, labels = _check(scores, labels, len(class_names))
    targets = one_hot(labels, len(class_names))
    ap, auc = average_precision(targets, scores), roc_auc(targets, scores)
    support = targets.sum(axis=0)
    hits = np.bincount(labels[top_k_correct(scores, labels, 1)], minlength=len(class_names))
    accuracy = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    return [{"index": i, "class": name, "support": int(support[i]), "ap": float(ap[i]),
             "auc": float(auc[i]), "accuracy": float(accuracy[i])}
            for i, name in enumerate(class_names)]


def write_per_class_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write `per_class_metrics` rows as CSV; undefined values (NaN) are left empty."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=PER_CLASS_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if isinstance(value, float) and np.isnan(value) else value
                             for key, value in row.items()})
    return path
