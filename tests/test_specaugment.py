"""SpecAugment: a correct time warp, masks of the right widths filled with the current mean."""

import dataclasses

import numpy as np
import pytest

from asf_jax.specaugment import (
    SpecAugmentConfig,
    default_specaugment_config,
    spec_augment,
    time_warp,
    warp_positions,
)

NO_AUGMENT = SpecAugmentConfig(time_warp=0, freq_masks=0, time_masks=0)


def _clip(seed: int, frames: int = 512) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((frames, 128)).astype(np.float32)


def test_config_round_trips_through_configdict():
    assert SpecAugmentConfig.from_config(default_specaugment_config()) == SpecAugmentConfig()
    assert SpecAugmentConfig.from_config({"time_warp": 3}).time_warp == 3


@pytest.mark.parametrize("frames", [512, 128])
def test_shape_and_dtype_kept(frames):
    clip = _clip(0, frames)
    out = spec_augment(clip, np.random.default_rng(0), SpecAugmentConfig())
    assert out.shape == clip.shape and out.dtype == np.float32
    assert not np.array_equal(out, clip)
    np.testing.assert_array_equal(clip, _clip(0, frames))  # input untouched


def test_identity_without_warp_and_masks():
    clip = _clip(1)
    np.testing.assert_array_equal(spec_augment(clip, np.random.default_rng(0), NO_AUGMENT), clip)
    disabled = SpecAugmentConfig(enabled=False)
    np.testing.assert_array_equal(spec_augment(clip, np.random.default_rng(0), disabled), clip)


def test_deterministic_for_a_seed():
    clip = _clip(2)
    config = SpecAugmentConfig()
    first = spec_augment(clip, np.random.default_rng(7), config)
    np.testing.assert_array_equal(first, spec_augment(clip, np.random.default_rng(7), config))
    assert not np.array_equal(first, spec_augment(clip, np.random.default_rng(8), config))


@pytest.mark.parametrize("centre,shift", [(5, -5), (5, 5), (100, 3), (300, -4), (506, 5), (60, 0)])
def test_warp_positions_fix_ends_and_break_at_the_centre(centre, shift):
    position = warp_positions(512, centre, shift)
    assert position[0] == 0 and position[-1] == 511
    assert np.all(np.diff(position) > 0)
    target = min(max(centre + shift, 1), 510)
    assert position[target] == pytest.approx(centre)
    # Linear on each side of the breakpoint.
    np.testing.assert_allclose(np.diff(position[:target + 1]), centre / target)
    np.testing.assert_allclose(np.diff(position[target:]), (511 - centre) / (511 - target))


def test_warp_with_zero_shift_is_the_identity():
    clip = _clip(3)
    np.testing.assert_array_equal(warp_positions(512, 200, 0), np.arange(512))
    np.testing.assert_array_equal(time_warp(clip, 200, 0), clip)


def test_warp_of_a_ramp_is_the_piecewise_linear_map():
    ramp = np.repeat(np.arange(512, dtype=np.float32)[:, None], 128, axis=1)  # value = frame
    out = time_warp(ramp, 100, 4)
    np.testing.assert_allclose(out[:, 0], warp_positions(512, 100, 4), atol=1e-4)
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))  # bins alike
    assert out[104, 0] == pytest.approx(100)  # the centre frame lands on c + d


def test_warped_frames_are_convex_combinations_of_neighbours():
    clip = _clip(4)
    out = time_warp(clip, 250, -5)
    lower = np.floor(warp_positions(512, 250, -5)).astype(int)
    upper = np.minimum(lower + 1, 511)
    low, high = np.minimum(clip[lower], clip[upper]), np.maximum(clip[lower], clip[upper])
    assert np.all(out >= low - 1e-6) and np.all(out <= high + 1e-6)


def test_drawn_warp_parameters_are_in_range():
    ramp = np.repeat(np.arange(512, dtype=np.float32)[:, None], 4, axis=1)  # value = frame
    config = dataclasses.replace(NO_AUGMENT, time_warp=5)
    allowed = np.stack([warp_positions(512, c, d) for c in range(5, 507) for d in range(-5, 6)])
    for seed in range(20):
        out = spec_augment(ramp, np.random.default_rng(seed), config)[:, 0]
        assert out[0] == 0 and out[-1] == 511 and np.all(np.diff(out) > 0)
        assert np.abs(allowed - out).max(axis=1).min() < 1e-3  # some (c, d) in range made it


def _masked_runs(changed: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], changed.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


@pytest.mark.parametrize("axis,limit", [(0, 27), (1, 25)])
def test_one_mask_is_a_band_of_the_clip_mean_with_width_below_the_limit(axis, limit):
    config = dataclasses.replace(NO_AUGMENT, freq_masks=1 - axis, time_masks=axis)
    widths = []
    for seed in range(150):
        clip = _clip(seed, 256)
        out = spec_augment(clip, np.random.default_rng(seed), config)
        changed = out != clip  # random data: a masked cell always changes
        whole = changed.all(axis=axis)  # whole mel bands (axis 0) or whole frames (axis 1)
        np.testing.assert_array_equal(changed.any(axis=axis), whole)
        runs = _masked_runs(whole)
        assert len(runs) <= 1
        widths.append(runs[0] if runs else 0)
        np.testing.assert_allclose(out[changed], clip.mean(), atol=1e-6)
    assert max(widths) < limit and max(widths) >= limit - 6 and min(widths) == 0


def test_time_mask_takes_the_mean_after_the_frequency_mask():
    config = dataclasses.replace(NO_AUGMENT, freq_masks=1, time_masks=1)
    checked = 0
    for seed in range(20):
        clip = _clip(seed)
        out = spec_augment(clip, np.random.default_rng(seed), config)
        changed = out != clip
        bands, frames = changed.all(axis=0), changed.all(axis=1)
        if not bands.any() or not frames.any():
            continue
        band_value = out[~frames][:, bands]
        np.testing.assert_allclose(band_value, clip.mean(), atol=1e-6)
        after_freq = clip.copy()
        after_freq[:, bands] = band_value[0, 0]
        np.testing.assert_allclose(out[frames], after_freq.mean(), atol=1e-6)
        checked += 1
    assert checked >= 10


def test_default_masks_stay_within_width_limits():
    config = dataclasses.replace(SpecAugmentConfig(), time_warp=0)
    for seed in range(30):
        clip = _clip(seed)
        changed = spec_augment(clip, np.random.default_rng(seed), config) != clip
        assert changed.all(axis=0).sum() < 2 * 27
        assert changed.all(axis=1).sum() < 2 * 25
