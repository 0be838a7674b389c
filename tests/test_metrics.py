"""Evaluation metrics: agree with scikit-learn (ties included) and with small hand computations."""

from __future__ import annotations

import csv
import math
from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, top_k_accuracy_score

from asf_jax import metrics


@pytest.fixture(scope="module")
def tied_scores():
    """Scores rounded to one decimal (many ties) and labels, with class 5 never present."""
    rng = np.random.default_rng(0)
    scores = np.round(rng.dirichlet(np.ones(6), size=200) * 4, 1) / 4
    labels = rng.choice([0, 1, 2, 3, 4], size=200)
    return scores, labels


def test_ap_and_auc_match_sklearn_with_ties(tied_scores):
    scores, labels = tied_scores
    targets = metrics.one_hot(labels, 6)
    ap, auc = metrics.average_precision(targets, scores), metrics.roc_auc(targets, scores)
    for c in range(5):
        assert ap[c] == pytest.approx(average_precision_score(targets[:, c], scores[:, c]),
                                      abs=1e-12)
        assert auc[c] == pytest.approx(roc_auc_score(targets[:, c], scores[:, c]), abs=1e-12)
    assert np.isnan(ap[5]) and np.isnan(auc[5])


def test_hand_computed_ap_and_auc():
    # Ranked: 0.9 (+), 0.8 (-), then a tie at 0.5 of (+, -), then 0.1 (+).
    scores = np.array([0.9, 0.8, 0.5, 0.5, 0.1])[:, None]
    targets = np.array([1, 0, 1, 0, 1], bool)[:, None]
    # Thresholds: 0.9 -> P 1/1; 0.5 (tie group) -> P 2/4; 0.1 -> P 3/5. AP = (1 + 1/2 + 3/5) / 3.
    assert metrics.average_precision(targets, scores)[0] == pytest.approx((1 + 0.5 + 0.6) / 3)
    # Positive/negative pairs won: 0.9 beats both, 0.5 ties one (a half), 0.1 beats none.
    assert metrics.roc_auc(targets, scores)[0] == pytest.approx((2 + 0.5 + 0) / 6)


def test_compute_metrics_hand_example():
    # Two classes of three, two views summed: rows sum to 2.
    scores = np.array([[1.2, 0.6, 0.2], [0.2, 1.0, 0.8], [0.4, 0.4, 1.2], [1.0, 0.8, 0.2]])
    labels = np.array([0, 2, 1, 0])
    result = metrics.compute_metrics(scores, labels, 3)
    assert result["top1"] == 0.5  # clips 0 and 3
    assert result["top5"] == 1.0
    # Class 0 is ranked perfectly; class 1's positive (0.4) is last; class 2's is second of 4.
    ap = [1.0, 1 / 4, 1 / 2]
    auc = [1.0, 0.0, 2 / 3]
    assert result["map"] == pytest.approx(np.mean(ap))
    assert result["auc"] == pytest.approx(np.mean(auc))
    assert result["dprime"] == pytest.approx(math.sqrt(2) * NormalDist().inv_cdf(5 / 9))
    expected_loss = -np.mean(np.log([0.6, 0.4, 0.2, 0.5]))
    assert result["loss"] == pytest.approx(expected_loss)
    assert (result["clips"], result["classes_scored"]) == (4, 3)


def test_compute_metrics_against_sklearn(tied_scores):
    scores, labels = tied_scores
    result = metrics.compute_metrics(scores * 2, labels, 6)  # summing views changes no metric
    targets = metrics.one_hot(labels, 6)
    assert result["map"] == pytest.approx(np.mean(
        [average_precision_score(targets[:, c], scores[:, c]) for c in range(5)]))
    assert result["auc"] == pytest.approx(np.mean(
        [roc_auc_score(targets[:, c], scores[:, c]) for c in range(5)]))
    assert result["classes_scored"] == 5


def test_top_k_matches_sklearn_without_ties():
    rng = np.random.default_rng(1)
    scores, labels = rng.dirichlet(np.ones(20), size=300), rng.integers(0, 20, size=300)
    result = metrics.compute_metrics(scores, labels, 20)
    for k in (1, 5):
        assert result[f"top{k}"] == top_k_accuracy_score(labels, scores, k=k, labels=range(20))


def test_ties_count_against_the_label():
    scores = np.full((2, 3), 1 / 3)
    assert metrics.compute_metrics(scores, np.array([0, 1]), 3)["top1"] == 0.0


def test_perfect_scores():
    labels = np.arange(4)
    result = metrics.compute_metrics(np.eye(4), labels, 4)
    assert (result["top1"], result["map"], result["auc"]) == (1.0, 1.0, 1.0)
    assert result["dprime"] == math.inf and result["loss"] == 0.0


def test_per_class_table_and_csv(tmp_path, tied_scores):
    scores, labels = tied_scores
    names = ["a", "b", "c", "d", "e", "never"]
    rows = metrics.per_class_metrics(scores, labels, names)
    targets = metrics.one_hot(labels, 6)
    assert [r["class"] for r in rows] == names
    assert [r["support"] for r in rows] == list(np.bincount(labels, minlength=6))
    predicted = scores.argmax(axis=1)
    for r in rows[:5]:
        c = r["index"]
        assert r["ap"] == pytest.approx(average_precision_score(targets[:, c], scores[:, c]))
        # Top-1 with ties counted against: argmax matches only when no other class ties it.
        untied = np.sum(scores == scores.max(axis=1, keepdims=True), axis=1) == 1
        assert r["accuracy"] == pytest.approx(np.mean((predicted == c)[labels == c]
                                                      & untied[labels == c]))
    assert rows[5]["support"] == 0 and np.isnan(rows[5]["ap"]) and np.isnan(rows[5]["accuracy"])

    path = metrics.write_per_class_csv(tmp_path / "per_class.csv", rows)
    with path.open() as file:
        written = list(csv.DictReader(file))
    assert list(written[0]) == list(metrics.PER_CLASS_FIELDS)
    assert written[0]["class"] == "a" and float(written[0]["ap"]) == pytest.approx(rows[0]["ap"])
    assert written[5]["ap"] == written[5]["auc"] == written[5]["accuracy"] == ""


@pytest.mark.parametrize(
    "scores,labels,message",
    [
        (np.ones((2, 4)), np.array([0, 1]), r"shape \(clips, 3\)"),
        (np.ones((2, 3)), np.array([0, 3]), r"labels must lie in \[0, 3\)"),
        (np.ones((2, 3)), np.array([0.0, 1.0]), "integer labels"),
        (-np.ones((2, 3)), np.array([0, 1]), "not logits"),
        (np.ones((0, 3)), np.zeros(0, int), "no clips"),
    ],
)
def test_bad_inputs(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        metrics.compute_metrics(scores, labels, 3)
