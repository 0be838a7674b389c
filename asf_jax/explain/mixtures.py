"""Mixtures with a known answer: an event of a known class placed at a known time into a
background of other recordings and noise, at a chosen SNR.

The ground truth of a mixture is the event's span (`event_frames`: the log-mel frames whose
centre falls inside it) and its cells (`event_cells`: the time-frequency cells of the span where
the event alone is louder than the background alone in the mel magnitude, i.e. the ideal binary
mask at 0 dB local SNR). The event is the loudest `length` seconds of an event recording (all of
it if shorter) with 10-ms fades; the background is background recordings not labelled like the
event (other classes the model knows may be among them), laid end to end with short random gaps
until it fills the mixture (a long first one starts at a random point), plus white noise
`noise_db` below the recordings. The SNR is the event's power over its span against the
background's mean power. Everything is drawn from one seeded generator per mixture.

Recording lists are a manifest CSV with a header naming at least `path` and `label` (paths
relative to the CSV; a `split` column can be filtered on) or a VGG-Sound-style manual dir
(vggsound.csv and audio files below it).
"""

from __future__ import annotations

import csv
import dataclasses
import re
import sys
from pathlib import Path

import numpy as np

from asf_jax import audio
from asf_jax.recipe import AudioRecipe

FADE_SECONDS = 0.01


@dataclasses.dataclass(frozen=True)
class Recording:
    path: Path
    label: str


@dataclasses.dataclass(frozen=True)
class MixtureSpec:
    """How mixtures are drawn; conditions (SNR x event length) are cycled through in turn."""

    count: int = 60
    seconds: float = 10.0
    snrs: tuple[float, ...] = (6.0, 0.0, -6.0)
    lengths: tuple[float, ...] = (0.5, 1.0, 2.0)  # event seconds (shorter events stay whole)
    noise_db: float = -20.0  # white noise relative to the background recordings' power
    max_gap: float = 0.3  # seconds of silence at most between background recordings
    seed: int = 0


@dataclasses.dataclass
class Mixture:
    """One mixture and its ground truth."""

    name: str
    samples: np.ndarray  # (samples,)
    label: str  # the event's class
    onset: int  # first sample of the event
    offset: int  # one past its last sample
    snr_db: float
    length: float  # the event length asked for, in seconds (a shorter recording stays whole)
    event: Path
    backgrounds: tuple[Path, ...]
    event_frames: np.ndarray  # (frames,) bool
    event_cells: np.ndarray  # (frames, mel) bool

    def row(self, recipe: AudioRecipe) -> dict[str, str | float]:
        """The mixture as a CSV row (times in seconds)."""
        rate = recipe.sample_rate
        return {"name": self.name, "label": self.label, "onset": self.onset / rate,
                "offset": self.offset / rate, "snr_db": self.snr_db, "length": self.length,
                "event": str(self.event),
                "backgrounds": ";".join(map(str, self.backgrounds)),
                "event_cells": float(self.event_cells.mean())}


# ------------------------------------------------------------------------------------------------
# Recording lists.
# ------------------------------------------------------------------------------------------------


def read_recordings(source: str | Path, split: str | None = None) -> list[Recording]:
    """Recordings of a manifest CSV or a VGG-Sound-style manual dir, optionally of one split."""
    source = Path(source)
    if source.is_dir():
        from asf_jax.datasets import manual_dir

        manifest = manual_dir.scan(source, manual_dir.read_class_names(source))
        clips = [c for name, group in manifest.clips.items() if split in (None, name)
                 for c in group]
        return [Recording(c.path, c.label) for c in clips]
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such manifest CSV or manual dir")
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise ValueError(f"{source}: expected a CSV with a header naming path and label")
    if split is not None and "split" not in rows[0]:
        raise ValueError(f"{source}: has no split column to choose {split!r} from")
    return [Recording(source.parent / row["path"], row["label"]) for row in rows
            if split is None or row["split"] == split]


def normalised_label(label: str) -> str:
    return re.sub(r"[\s_\-]+", " ", label.strip().lower())


def without_labels(recordings: list[Recording], labels: list[str]) -> list[Recording]:
    """`recordings` minus those whose label is one of `labels` (spacing and case ignored)."""
    excluded = {normalised_label(label) for label in labels}
    return [r for r in recordings if normalised_label(r.label) not in excluded]


# ------------------------------------------------------------------------------------------------
# Signals.
# ------------------------------------------------------------------------------------------------


def loudest_segment(samples: np.ndarray, length: int) -> np.ndarray:
    """The `length` consecutive samples of highest energy (all of them if shorter)."""
    if len(samples) <= length:
        return samples
    energy = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
    start = int(np.argmax(energy[length:] - energy[:-length]))
    return samples[start:start + length]


def faded(samples: np.ndarray, rate: int) -> np.ndarray:
    """Raised-cosine fades of 10 ms (at most a quarter of the signal) at both ends."""
    n = min(round(FADE_SECONDS * rate), len(samples) // 4)
    out = samples.astype(np.float32).copy()
    if n:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


def power(samples: np.ndarray) -> float:
    return float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0


def readable(recordings: list[Recording], rng: np.random.Generator, rate: int
             ) -> tuple[Recording, np.ndarray]:
    """A random recording that loads and is not silent, with its samples; unusable ones (broken,
    empty, silent files) are skipped with a warning."""
    for index in rng.permutation(len(recordings)):
        recording = recordings[index]
        try:
            samples = audio.load_audio(recording.path, rate)
        except audio.AudioError as error:
            print(f"  skipped {error}", file=sys.stderr)
            continue
        if power(samples) > 0:
            return recording, samples
        print(f"  skipped {recording.path}: digital silence", file=sys.stderr)
    raise ValueError(f"none of {len(recordings)} recordings (e.g. {recordings[0].path}) can be "
                     "used")


def background(recordings: list[Recording], length: int, recipe: AudioRecipe,
               rng: np.random.Generator, max_gap: float) -> tuple[np.ndarray, tuple[Path, ...]]:
    """`length` samples of background recordings laid end to end with random gaps."""
    out = np.zeros(length, np.float32)
    used = []
    position = int(rng.uniform(0, max_gap) * recipe.sample_rate)
    for attempt in range(1000):
        if position >= length:
            break
        recording, samples = readable(recordings, rng, recipe.sample_rate)
        if attempt == 0 and len(samples) > length:  # a long recording: start anywhere
            start = rng.integers(len(samples) - length)
            samples = samples[start:]
        piece = faded(samples[:length - position], recipe.sample_rate)
        out[position:position + len(piece)] = piece
        used.append(recording.path)
        position += len(piece) + int(rng.uniform(0, max_gap) * recipe.sample_rate)
    return out, tuple(used)


def mel_magnitude(samples: np.ndarray, recipe: AudioRecipe) -> np.ndarray:
    """(frames, mel) mel magnitude (the log-mel before the log)."""
    return np.exp(audio.logmel(samples, recipe)) - recipe.log_offset


def ground_truth(event: np.ndarray, background_samples: np.ndarray, onset: int, offset: int,
                 recipe: AudioRecipe) -> tuple[np.ndarray, np.ndarray]:
    """(frames,) span and (frames, mel) cells of an event placed alone (`event`, as long as the
    mixture, zero outside its span) against the background alone."""
    event_mel = mel_magnitude(event, recipe)
    frames = np.arange(len(event_mel)) * recipe.hop_length  # frame centres (centred STFT)
    span = (frames >= onset) & (frames < offset)
    cells = span[:, None] & (event_mel > mel_magnitude(background_samples, recipe))
    return span, cells


def make_mixture(index: int, events: list[Recording], backgrounds: list[Recording],
                 spec: MixtureSpec, recipe: AudioRecipe) -> Mixture:
    """Mixture `index`: the class, SNR and event length cycle with the index; the rest is drawn
    from a generator seeded by (spec.seed, index)."""
    rng = np.random.default_rng([spec.seed, index])
    rate = recipe.sample_rate
    labels = sorted({e.label for e in events})
    label = labels[index % len(labels)]
    snr = spec.snrs[index % len(spec.snrs)]
    seconds = spec.lengths[(index // len(spec.snrs)) % len(spec.lengths)]
    recording, samples = readable([e for e in events if e.label == label], rng, rate)
    event = faded(loudest_segment(samples, round(seconds * rate)), rate)
    length = round(spec.seconds * rate)
    if len(event) >= length:
        raise ValueError(f"{recording.path}: a {len(event) / rate:.1f}-s event does not fit a "
                         f"{spec.seconds}-s mixture")
    others = without_labels(backgrounds, [label])
    if not others:
        raise ValueError(f"every background recording is labelled {label!r}, the event's class")
    bed, used = background(others, length, recipe, rng, spec.max_gap)
    bed_power = power(bed)
    noise = rng.normal(size=length) * np.sqrt(max(bed_power, 1e-8) * 10 ** (spec.noise_db / 10))
    bed = (bed + noise).astype(np.float32)
    onset = int(rng.integers(0, length - len(event)))
    placed = np.zeros(length, np.float32)
    gain = np.sqrt(power(bed) * 10 ** (snr / 10) / power(event))
    placed[onset:onset + len(event)] = gain * event
    mixture = bed + placed
    peak = float(np.abs(mixture).max())
    scale = 0.9 / peak if peak > 0.9 else 1.0  # no clipping; the SNR is unchanged
    span, cells = ground_truth(scale * placed, scale * bed, onset, onset + len(event), recipe)
    name = f"{index:04d}_{re.sub(r'[^A-Za-z0-9]+', '-', label)}_{snr:+g}dB_{seconds:g}s"
    return Mixture(name, (scale * mixture).astype(np.float32), label, onset, onset + len(event),
                   snr, seconds, recording.path, used, span, cells)
