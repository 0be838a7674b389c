"""Folds that hold whole source groups, and the choice of the test fold."""

from __future__ import annotations


def assign_folds(group_sizes: dict[str, int], num_folds: int) -> dict[str, int]:
    """Folds 1..K holding whole groups: largest group first into the lightest fold (ties: lowest
    fold number, then group name), so fold sizes are as even as whole groups allow."""
    num_folds = max(1, min(num_folds, len(group_sizes)))
    totals = [0] * num_folds
    folds = {}
    for group in sorted(group_sizes, key=lambda g: (-group_sizes[g], g)):
        fold = min(range(num_folds), key=lambda f: (totals[f], f))
        folds[group] = fold + 1
        totals[fold] += group_sizes[group]
    return folds


def choose_test_fold(fold_labels: dict[int, set[str]], fold_sizes: dict[int, int]) -> int:
    """The test fold: the one covering the most labels; among those the smallest; then the
    highest fold number. Deterministic, and the test set can score as many classes as possible."""
    return max(fold_labels, key=lambda f: (len(fold_labels[f]), -fold_sizes[f], f))
