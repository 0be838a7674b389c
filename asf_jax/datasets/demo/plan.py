"""What the demo dataset holds before any audio is made: ids, labels, splits, formats, folders."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Sequence

import numpy as np

from asf_jax.datasets.demo.sounds import CLASS_NAMES
from asf_jax.datasets.synthetic import audio_path

AUDIO_FOLDERS = ("audio/part0", "audio/part1/sub", "audio/part2/deeper/nested")
ID_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """One CSV row and the audio file it names (everything but the samples)."""

    youtube_id: str
    start: int
    label: str
    split: str
    fmt: str
    sample_rate: int
    channels: int
    seconds: float
    folder: str

    @property
    def path(self) -> str:
        """Relative to the dataset folder."""
        return audio_path(self.youtube_id, self.start, self.fmt, self.folder)

    @property
    def row(self) -> list[str]:
        return [self.youtube_id, str(self.start), self.label, self.split]


def _spread(rng: np.random.Generator, n: int, shares: Sequence[tuple[object, float]]) -> list:
    """`n` values in the given proportions (each at least once when n allows), shuffled."""
    counts = [max(1, int(round(share * n))) for _, share in shares]
    counts[0] = n - sum(counts[1:])
    values = [value for (value, _), count in zip(shares, counts, strict=True) for _ in range(count)]
    return [values[i] for i in rng.permutation(n)]


def youtube_ids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct 11-character ids; a fixed few start with '-' or contain '-' and '_'."""
    ids: list[str] = []
    taken: set[str] = set()
    while len(ids) < n:
        chars = list(rng.choice(list(ID_ALPHABET), 11))
        k = len(ids)
        if k % 7 == 0:
            chars[0] = "-"
        if k % 5 == 1:
            chars[int(rng.integers(1, 10))] = "_"
        if k % 6 == 2:
            chars[int(rng.integers(1, 10))] = "-"
        youtube_id = "".join(chars)
        if youtube_id not in taken:
            taken.add(youtube_id)
            ids.append(youtube_id)
    return ids


def plan_clips(rng: np.random.Generator, clips_per_class: int, test_per_class: int,
                ids: list[str], use_m4a: bool) -> list[ClipPlan]:
    """The good clips: labels and splits in order, the varied attributes _spread and shuffled."""
    n = clips_per_class * len(CLASS_NAMES)
    fmt_shares = [("wav", 0.65), ("flac", 0.15), ("ogg", 0.07), ("mp3", 0.07), ("m4a", 0.02)]
    formats = [f if use_m4a or f != "m4a" else "wav" for f in _spread(rng, n, fmt_shares)]
    rates = _spread(rng, n, [(16000, 0.5), (8000, 0.15), (22050, 0.2), (44100, 0.15)])
    channels = _spread(rng, n, [(1, 0.85), (2, 0.15)])
    lengths = _spread(rng, n, [("full", 0.7), ("medium", 0.2), ("short", 0.1)])
    seconds = {"full": lambda: 10.0, "medium": lambda: float(rng.integers(6, 10)),
               "short": lambda: round(float(rng.uniform(2.0, 5.0)), 2)}
    plans = []
    for i in range(n):
        label = CLASS_NAMES[i // clips_per_class]
        split = "test" if i % clips_per_class >= clips_per_class - test_per_class else "train"
        # Clip 1 reuses clip 0's video at another start time, as real VGG-Sound rows sometimes do.
        youtube_id = ids[0] if i == 1 else ids[i]
        start = 10 * int(rng.integers(0, 30)) + (300 if i == 1 else 0)
        plans.append(ClipPlan(youtube_id, start, label, split, formats[i], rates[i], channels[i],
                              seconds[lengths[i]](), AUDIO_FOLDERS[int(rng.integers(3))]))
    return plans


