"""The benchmarks' synthetic 10-s clips, written as a VGG-Sound manual dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asf_jax.datasets.synthetic import SyntheticClip, write_manual_dir

CLIP_SECONDS = 10.0
SYNTHETIC_CLASSES = ("dog barking", "church bell ringing")


def synthetic_clips(num_clips: int, seconds: float = CLIP_SECONDS) -> list[SyntheticClip]:
    """Noisy tones of two classes; every fifth clip is a test clip (its two views are built too)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    return [SyntheticClip(f"bench{i:05d}", 0, SYNTHETIC_CLASSES[i % 2],
                          "test" if i % 5 == 4 else "train",
                          0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
                          + 0.05 * rng.standard_normal(t.size))
            for i in range(num_clips)]


def write_synthetic_manual_dir(root: Path, num_clips: int) -> Path:
    return write_manual_dir(root, synthetic_clips(num_clips), SYNTHETIC_CLASSES)


