"""Masks: which time-frequency cells of a saliency map to keep, and a same-area random baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage


@dataclasses.dataclass(frozen=True)
class MaskSpec:
    """Threshold rule on the [0, 1]-normalised (optionally smoothed) saliency.

    `mean`: cells at or above the mean; `std`: above mean + k·std; `top`: exactly the `percent` %
    most salient cells. Binary masks are 0/1; soft ones keep the normalised saliency where selected.
    """

    rule: str = "std"
    k: float = 1.0
    percent: float = 20.0
    binary: bool = True
    sigma: tuple[float, float] = (0.0, 0.0)  # Gaussian smoothing (frames, mel) before thresholding

    @classmethod
    def parse(cls, text: str, binary: bool = True, sigma: tuple[float, float] = (0.0, 0.0)
              ) -> MaskSpec:
        """"mean", "std" / "std:K" or "top:P" (percent)."""
        rule, _, value = text.partition(":")
        if rule == "mean" and not value:
            return cls("mean", binary=binary, sigma=sigma)
        if rule == "std":
            return cls("std", k=float(value or 1.0), binary=binary, sigma=sigma)
        if rule == "top" and value:
            return cls("top", percent=float(value), binary=binary, sigma=sigma)
        raise ValueError(f"threshold {text!r}: expected mean, std, std:K or top:P")

    @property
    def threshold(self) -> str:
        """The rule as `parse` reads it."""
        return {"mean": "mean", "std": f"std:{self.k:g}", "top": f"top:{self.percent:g}"}[
            self.rule]


def normalise(saliency: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] per clip; a constant map becomes zeros."""
    low, high = float(saliency.min()), float(saliency.max())
    return ((saliency - low) / (high - low) if high > low else np.zeros_like(saliency)).astype(
        np.float32)


def top_cells(saliency: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of exactly round(fraction · size) most salient cells (ties: first position)."""
    count = int(round(fraction * saliency.size))
    order = np.argsort(-saliency, axis=None, kind="stable")
    selected = np.zeros(saliency.size, bool)
    selected[order[:count]] = True
    return selected.reshape(saliency.shape)


def make_mask(saliency: np.ndarray, spec: MaskSpec = MaskSpec()) -> np.ndarray:
    """(frames, mel) saliency -> (frames, mel) float32 mask in [0, 1]."""
    values = normalise(scipy.ndimage.gaussian_filter(saliency, spec.sigma, mode="nearest")
                       if any(spec.sigma) else saliency)
    if spec.rule == "top":
        selected = top_cells(values, spec.percent / 100)
    elif spec.rule == "mean":
        selected = values >= values.mean()
    else:
        selected = values > values.mean() + spec.k * values.std()
    return (selected if spec.binary else np.where(selected, values, 0)).astype(np.float32)


def random_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same mask values at random cells: a baseline with the same area (and softness)."""
    return rng.permutation(mask.ravel()).reshape(mask.shape)
