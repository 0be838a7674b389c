"""SpecAugment for one training clip: time warp, frequency masks, time masks (DESIGN.md).

Runs in the input pipeline on the host, in NumPy, before the Slow frames are gathered. All its
randomness comes from the `np.random.Generator` passed in, so grain's per-element RNG makes it
reproducible.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np


@dataclasses.dataclass(frozen=True)
class SpecAugmentConfig:
    """The VGG-Sound recipe: warp W=5, 2 frequency masks of width [0,27), 2 time masks of [0,25)."""

    enabled: bool = True
    time_warp: int = 5  # W: warp centre in [W, T-W), shift in [-W, W]; 0 disables the warp
    freq_masks: int = 2
    freq_mask_width: int = 27  # widths uniform in [0, freq_mask_width)
    time_masks: int = 2
    time_mask_width: int = 25  # widths uniform in [0, time_mask_width)

    @classmethod
    def from_config(cls, config: SpecAugmentConfig | ml_collections.ConfigDict | dict[str, Any]
                    ) -> SpecAugmentConfig:
        """Accept this dataclass, a ConfigDict (as nested in the training config) or a dict."""
        if isinstance(config, SpecAugmentConfig):
            return config
        if isinstance(config, ml_collections.ConfigDict):
            config = config.to_dict()
        return cls(**config)


def default_specaugment_config() -> ml_collections.ConfigDict:
    """The recipe's settings as a ConfigDict, for nesting in an ml-collections config file."""
    return ml_collections.ConfigDict(dataclasses.asdict(SpecAugmentConfig()))


def warp_positions(num_frames: int, centre: int, shift: int) -> np.ndarray:
    """Source position of each output frame: [0,c] stretched onto [0,c+d], [c,T) onto [c+d,T).

    Frames 0 and T-1 stay fixed and shift 0 gives exactly `arange(T)`. The landing point c+d is kept
    in [1, T-2] so that neither piece collapses to a single frame. (T,) float64, increasing.
    """
    last = num_frames - 1
    target = min(max(centre + shift, 1), last - 1)
    return np.interp(np.arange(num_frames, dtype=np.float64), [0, target, last], [0, centre, last])


def time_warp(logmel: np.ndarray, centre: int, shift: int) -> np.ndarray:
    """Resample `logmel` (time, mel) along time at `warp_positions`, by linear interpolation."""
    num_frames = logmel.shape[0]
    position = warp_positions(num_frames, centre, shift)
    lower = position.astype(np.int64)  # floor, as positions are >= 0
    weight = (position - lower).astype(logmel.dtype)[:, None]  # (time, 1), in [0, 1)
    out = np.take(logmel, lower, axis=0)  # (time, mel)
    step = np.take(logmel, np.minimum(lower + 1, num_frames - 1), axis=0)
    step -= out
    step *= weight
    out += step
    return out


def _uniform_int(u: float, low: int, high: int) -> int:
    """An integer uniform in [low, high) from a uniform float u in [0, 1)."""
    return low + int(u * (high - low))


def spec_augment(logmel: np.ndarray, rng: np.random.Generator, config: SpecAugmentConfig
                 ) -> np.ndarray:
    """Augment one clip's (time, mel) log-mel; returns a new array of the same shape and dtype.

    Order as in the reference: time warp, frequency masks, time masks. A masked cell takes the mean
    of the clip's spectrogram as it is just before that mask (so after the warp and earlier masks).
    """
    if not config.enabled:
        return logmel
    num_frames, num_mels = logmel.shape
    masks = ([(True, config.freq_mask_width, num_mels)] * config.freq_masks
             + [(False, config.time_mask_width, num_frames)] * config.time_masks)
    # One draw for everything: Generator calls cost microseconds each, a clip's budget is ~100.
    uniforms = iter(rng.random(2 + 2 * len(masks)).tolist())
    warp = config.time_warp
    if warp > 0 and num_frames > 2 * warp:
        centre = _uniform_int(next(uniforms), warp, num_frames - warp)
        shift = _uniform_int(next(uniforms), -warp, warp + 1)
        out = time_warp(logmel, centre, shift)
    else:
        out = logmel.copy()
    # The running mean is updated from the masked cells' old sum instead of another full pass;
    # per-mel sums make a frequency band's old sum cheap (frequency masks come first).
    mel_sums = np.ones(num_frames, out.dtype) @ out  # (mel,); a BLAS gemv beats sum(axis=0) 3x
    total = out.size
    mean = float(mel_sums.sum()) / total
    for is_freq, max_width, size in masks:
        width = _uniform_int(next(uniforms), 0, min(max_width, size + 1))
        start = _uniform_int(next(uniforms), 0, size - width + 1)
        stop = start + width
        if is_freq:
            old_sum = float(mel_sums[start:stop].sum())
            out[:, start:stop] = mean
            mel_sums[start:stop] = mean * num_frames
        else:
            old_sum = float(out[start:stop].sum())
            out[start:stop] = mean
        mean += (width * (total // size) * mean - old_sum) / total
    return out
