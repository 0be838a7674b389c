"""Clips: trimming, level normalisation and finding duplicate recordings."""

from __future__ import annotations

import collections
import dataclasses
import hashlib

import numpy as np
import scipy.signal

from asf_jax.audio import logmel
from asf_jax.baseline import logmel_statistics

SAMPLE_RATE = 16000
PEAK = 0.5  # -6 dBFS
SILENCE = 1e-3  # trailing samples below this fraction of the peak (-60 dB) are cut
MIN_SECONDS = 0.02

@dataclasses.dataclass
class Clip:
    """One recording: mono float32 samples at SAMPLE_RATE and where it came from."""

    source: str
    label: str
    name: str  # file name stem, unique within (source, label)
    samples: np.ndarray
    group: str  # sources that share recordings share a group
    origin: str  # package and file (and note) it was read or rendered from


def trim_trailing_silence(samples: np.ndarray) -> np.ndarray:
    """Cut the tail once the signal stays below -60 dB of its peak (one-shot samples' padding)."""
    loud = np.flatnonzero(np.abs(samples) >= SILENCE * np.abs(samples).max())
    return samples[:loud[-1] + 1] if loud.size else samples[:0]


def normalise(samples: np.ndarray, keep_levels: bool) -> np.ndarray:
    """Peak at -6 dBFS, or (keep_levels) the recorded level, only scaled down if it would clip."""
    peak = np.abs(samples).max()
    return (samples * (min(1.0, 0.999 / peak) if keep_levels else PEAK / peak)).astype(np.float32)


def is_silent(samples: np.ndarray) -> bool:
    return samples.size == 0 or np.abs(samples).max() < 1e-4


def finish(samples: np.ndarray, keep_levels: bool) -> np.ndarray | None:
    """A one-shot recording trimmed of its silent tail and normalised; None when (nearly) silent."""
    if is_silent(samples):
        return None
    samples = trim_trailing_silence(samples)
    if samples.size < MIN_SECONDS * SAMPLE_RATE:
        return None
    return normalise(samples, keep_levels)


def as_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)


def deduplicate(clips: list[Clip]) -> tuple[list[Clip], int, int]:
    """Keep the first of identical recordings; drop every copy of one that has two labels.

    Returns (kept, copies dropped, clips dropped for conflicting labels).
    """
    by_hash: dict[str, list[Clip]] = collections.defaultdict(list)
    for clip in clips:
        by_hash[hashlib.sha1(as_pcm16(clip.samples).tobytes()).hexdigest()].append(clip)
    kept, copies, conflicts = [], 0, 0
    for clip in clips:
        same = by_hash[hashlib.sha1(as_pcm16(clip.samples).tobytes()).hexdigest()]
        if len({c.label for c in same}) > 1:
            conflicts += 1
        elif same[0] is clip:
            kept.append(clip)
        else:
            copies += 1
    return kept, copies, conflicts


def waveform_match(a: np.ndarray, b: np.ndarray, seconds: float = 1.0) -> float:
    """Peak normalised cross-correlation of the first `seconds` of two clips, over all lags:
    about 1 for the same recording (whatever its gain, trim or encoding), lower otherwise."""
    a, b = a[:round(seconds * SAMPLE_RATE)], b[:round(seconds * SAMPLE_RATE)]
    correlation = scipy.signal.correlate(a, b, mode="full", method="fft")
    return float(np.abs(correlation).max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def cross_group_matches(clips: list[Clip], candidate_cosine: float = 0.95,
                        threshold: float = 0.95) -> list[tuple[Clip, Clip, float]]:
    """Same-label clips of different groups that look like one recording: candidates whose
    log-mel statistics (the baseline's features) have cosine >= `candidate_cosine`, confirmed
    by `waveform_match` >= `threshold`. A pair means the groups probably share a recording
    (different recordings of one pitch with a simple timbre, e.g. two marimbas, reach ~0.92)."""
    features = np.stack([logmel_statistics(logmel(c.samples)) for c in clips])
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    groups = np.array([c.group for c in clips])
    labels = np.array([c.label for c in clips])
    candidates = ((features @ features.T >= candidate_cosine)
                  & (groups[:, None] != groups[None, :]) & (labels[:, None] == labels[None, :]))
    matches = []
    for i, j in zip(*np.nonzero(np.triu(candidates, 1)), strict=True):
        score = waveform_match(clips[i].samples, clips[j].samples)
        if score >= threshold:
            matches.append((clips[i], clips[j], score))
    return matches
