"""Waveforms in, log-mel spectrograms out: the exact front end of the reference data loader.

Reading: WAV/FLAC/OGG/MP3 through soundfile, M4A/MP4 (and anything soundfile cannot read) through
ffmpeg. Every file is downmixed to mono and resampled to the recipe's rate. Features follow
DESIGN.md: magnitude STFT (n_fft 2048, 20 ms periodic Hann, 10 ms hop, centred, zero padding),
128 HTK mel bins without normalisation, natural log with a 1e-6 offset, layout (time, mel).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import scipy.fft
import scipy.sparse
import soundfile
import soxr

from asf_jax.recipe import SLOWFAST, AudioRecipe, get_recipe

FFMPEG_EXTENSIONS = frozenset({".m4a", ".mp4", ".aac", ".webm", ".mkv"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3"}) | FFMPEG_EXTENSIONS


class AudioError(Exception):
    """An audio file that cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


# ------------------------------------------------------------------------------------------------
# Reading audio.
# ------------------------------------------------------------------------------------------------


def _read_with_ffmpeg(path: Path, sample_rate: int) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            path,
            f"reading {path.suffix or 'this'} files needs ffmpeg, which is not installed "
            "(e.g. `apt-get install ffmpeg` or `conda install ffmpeg`)",
        )
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
               "-ar", str(sample_rate), "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(path, f"ffmpeg could not decode it: {message[-1] if message else '?'}")
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 samples in [-1, 1) at `sample_rate`; raises AudioError naming file and reason.

    PCM is scaled as soundfile reads it (int16 / 32768), the scale the log-mel recipe assumes.
    Other rates are resampled (soxr, as librosa.resample); channels are averaged.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        samples = _read_with_ffmpeg(path, sample_rate)
    else:
        try:
            data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            if shutil.which("ffmpeg") is None:
                raise AudioError(path, f"corrupt or unsupported audio ({error})") from None
            samples = _read_with_ffmpeg(path, sample_rate)
        else:
            mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
            samples = resample(mono, file_rate, sample_rate)
    if samples.size == 0:
        raise AudioError(path, "contains no audio samples")
    if not np.all(np.isfinite(samples)):
        raise AudioError(path, "contains NaN or infinite samples")
    return samples


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono float32 signal; a no-op at the target rate."""
    samples = np.asarray(samples, dtype=np.float32)
    if rate == target_rate:
        return samples
    resampled = soxr.resample(samples, rate, target_rate, quality="soxr_hq")
    return _fix_length(resampled, math.ceil(len(samples) * (target_rate / rate)))


def _fix_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero pad to `length`, as `librosa.resample` does after soxr."""
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))


def as_waveform(audio: str | os.PathLike | np.ndarray, sr: int | None, recipe: AudioRecipe
                ) -> np.ndarray:
    """A path (read and resampled) or an array at rate `sr` ((samples,) or (channels, samples))."""
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio, recipe.sample_rate)
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=0)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"expected a non-empty (samples,) or (channels, samples) array, got "
                         f"shape {np.shape(audio)}")
    return resample(samples, sr or recipe.sample_rate, recipe.sample_rate)


# ------------------------------------------------------------------------------------------------
# Log-mel features.
# ------------------------------------------------------------------------------------------------


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)  # HTK


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(recipe: AudioRecipe) -> np.ndarray:
    """(num_mels, n_fft // 2 + 1) float32 HTK mel filters, no area normalisation.

    `librosa.filters.mel(htk=True, norm=None)` written out (tests check they are equal), because
    importing librosa's filters (and with them SciPy's signal and stats, numba, joblib) cost every
    process a second, as long as 150 log-mels: every dataset-build worker paid it at start-up.
    """
    bin_hz = np.fft.rfftfreq(n=recipe.n_fft, d=1.0 / recipe.sample_rate)  # (bins,)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(recipe.fmin), _hz_to_mel(recipe.fmax),
                                   recipe.num_mels + 2))  # (mel + 2,) band edges and centres
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bin_hz)  # (mel + 2, bins)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    return np.maximum(0, np.minimum(rising, falling)).astype(np.float32)


def periodic_hann(length: int) -> np.ndarray:
    """(length,) float64 periodic Hann window (`scipy.signal.get_window("hann", fftbins=True)`)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def stft(samples: np.ndarray, recipe: AudioRecipe) -> np.ndarray:
    """Complex STFT (n_fft // 2 + 1, frames) with the recipe's window, centred, zero padded."""
    return librosa.stft(
        np.asarray(samples, dtype=np.float32), n_fft=recipe.n_fft, hop_length=recipe.hop_length,
        win_length=recipe.win_length, window="hann", center=True, pad_mode="constant",
    )


@dataclasses.dataclass(frozen=True)
class _LogMelPlan:
    """What `logmel` needs besides the signal, made once per recipe."""

    window: np.ndarray  # (win_length,) float64 periodic Hann
    filters: scipy.sparse.csr_array  # (bins, mel) float32: each bin feeds at most two mel bands


@functools.lru_cache(maxsize=8)
def _logmel_plan(recipe: AudioRecipe) -> _LogMelPlan:
    return _LogMelPlan(periodic_hann(recipe.win_length),
                       scipy.sparse.csr_array(mel_filterbank(recipe).T))


def frames(samples: np.ndarray, recipe: AudioRecipe) -> np.ndarray:
    """(..., 1 + samples // hop, win_length) view: frame t holds the samples under the window
    centred on sample t * hop, zeros beyond the signal (librosa's `center=True`, constant pad).
    """
    half = recipe.win_length // 2
    padded = np.pad(samples, [(0, 0)] * (samples.ndim - 1) + [(half, half)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, recipe.win_length, axis=-1)
    return windows[..., ::recipe.hop_length, :]


# Frames per FFT call: a (256, 1025) complex128 block (4 MB) stays in cache, and a long recording
# never needs its whole spectrogram in memory at once.
_FRAMES_PER_BLOCK = 256


def logmel(samples: np.ndarray, recipe: str | AudioRecipe = "slowfast") -> np.ndarray:
    """(..., frames, num_mels) float32 log-mel of (..., samples) signals; frames = 1 + len // hop.

    The numbers of librosa's `stft` -> `abs` -> mel filterbank -> log (within 1e-5, see
    tests/test_audio.py), faster: frames are a strided view of the signal, the window is applied to
    its 320 taps only (the FFT zero pads them to n_fft), and the filterbank is a sparse matrix (each
    FFT bin feeds at most two mel bands). The FFT stays float64 as in librosa: a float32 FFT is
    2x faster, but its rounding error, about the same in every bin of a frame, moved the log-mel of
    band-limited or tonal audio by up to 0.2 (a fifth of the demo set's frames by more than 1e-4).
    """
    recipe = get_recipe(recipe)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.shape[-1] == 0:
        raise ValueError("cannot compute the log-mel of an empty signal")
    plan = _logmel_plan(recipe)
    framed = frames(samples, recipe)  # (..., frames, win)
    flat = framed.reshape(-1, recipe.win_length)  # (frames, win)
    mel = np.empty((len(flat), recipe.num_mels), np.float32)
    for start in range(0, len(flat), _FRAMES_PER_BLOCK):
        windowed = flat[start:start + _FRAMES_PER_BLOCK] * plan.window  # float64
        spectrum = np.fft.rfft(windowed, n=recipe.n_fft, axis=-1)  # (block, bins)
        magnitude = np.abs(spectrum.astype(np.complex64))  # rounded as librosa's complex64 STFT
        mel[start:start + len(windowed)] = magnitude @ plan.filters
    mel += recipe.log_offset
    return np.log(mel, out=mel).reshape(*framed.shape[:-1], recipe.num_mels)


def pad_frames(features: np.ndarray, num_frames: int, recipe: AudioRecipe = SLOWFAST
               ) -> np.ndarray:
    """(frames, mel) -> (max(frames, num_frames), mel): a short clip filled up as
    `recipe.short_clips` says (the one place that does it, for training crops, test views,
    prediction and explanation alike). Longer clips are returned unchanged.

    "edge" repeats the last frame (the reference), "tile" repeats the clip from its start,
    "floor" appends the log-mel of silence, log(log_offset), "zero" appends zeros.
    """
    length = features.shape[0]
    if length >= num_frames:
        return features
    mode = recipe.short_clips
    if mode == "tile":
        return features[np.arange(num_frames) % length]
    if mode == "edge":
        fill = np.repeat(features[-1:], num_frames - length, axis=0)
    else:
        value = math.log(recipe.log_offset) if mode == "floor" else 0.0
        fill = np.full((num_frames - length,) + features.shape[1:], value, features.dtype)
    return np.concatenate([features, fill], axis=0)


def clip_frames(num_samples: int, recipe: AudioRecipe) -> int:
    """Log-mel frames of a signal of `num_samples` samples (`logmel`'s 1 + samples // hop)."""
    return 1 + num_samples // recipe.hop_length


def clip_logmel(samples: np.ndarray, start: int, recipe: AudioRecipe) -> np.ndarray:
    """(num_frames, num_mels) log-mel of the clip that starts at sample `start`.

    The reference slices `window_samples` = clip_samples - 1 samples (81903 -> 512 frames).
    Signals shorter than one clip are not cropped: their whole log-mel is filled up to one clip as
    `recipe.short_clips` says (`pad_frames`).
    """
    if len(samples) < recipe.clip_samples:
        return pad_frames(logmel(samples, recipe), recipe.num_frames, recipe)
    return logmel(samples[start:start + recipe.window_samples], recipe)


def view_starts(num_samples: int, recipe: AudioRecipe, num_views: int) -> list[int]:
    """Start samples of the evenly spaced test views: `int(linspace(0, len - clip, n)[k])`."""
    last = max(num_samples - recipe.clip_samples, 0)
    return [int(s) for s in np.linspace(0, last, num_views)]


def logmel_views(
    audio: str | os.PathLike | np.ndarray,
    sr: int | None = None,
    *,
    recipe: str | AudioRecipe = "slowfast",
    num_views: int = 2,
) -> np.ndarray:
    """(num_views, num_frames, num_mels) float32: the reference's evenly spaced test views.

    `audio` is a path, or an array sampled at `sr` (default: the recipe's rate). With 2 views
    (the protocol) these are the first and the last 5.119 s of the recording.
    """
    recipe = get_recipe(recipe)
    samples = as_waveform(audio, sr, recipe)
    if len(samples) < recipe.clip_samples:
        view = clip_logmel(samples, 0, recipe)
        return np.repeat(view[None], num_views, axis=0)
    starts = view_starts(len(samples), recipe, num_views)
    return np.stack([clip_logmel(samples, s, recipe) for s in starts])


def window_starts(length: int, window: int, hop: int) -> np.ndarray:
    """First positions of windows `hop` apart over `length` (samples or frames); the last one is
    aligned to the end so nothing is left out, and a signal shorter than a window gets one."""
    last = max(length - window, 0)
    starts = list(range(0, last + 1, max(hop, 1)))
    if starts[-1] != last:
        starts.append(last)
    return np.asarray(starts)


def logmel_windows(
    audio: str | os.PathLike | np.ndarray,
    sr: int | None = None,
    *,
    recipe: str | AudioRecipe = "slowfast",
    hop_seconds: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive clips over a long recording: ((windows, frames, mels), start times in s).

    Windows are `hop_seconds` apart (default: one clip, no overlap); the last one is aligned to
    the end of the recording so no audio is left out.
    """
    recipe = get_recipe(recipe)
    samples = as_waveform(audio, sr, recipe)
    hop = round((hop_seconds or recipe.clip_seconds) * recipe.sample_rate)
    starts = window_starts(len(samples), recipe.clip_samples, hop)
    views = np.stack([clip_logmel(samples, s, recipe) for s in starts])
    return views, np.asarray(starts, dtype=np.float64) / recipe.sample_rate
