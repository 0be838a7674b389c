"""Signal building blocks of the demo sounds: oscillators, envelopes, onsets, filters and noise.

Every function takes the sample rate `sr` and length `n` in samples and returns (n,) float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.signal


def oscillator(freq: np.ndarray | float, sr: int, n: int, phase: float = 0.0) -> np.ndarray:
    """Sine following an instantaneous frequency (Hz, scalar or per sample), kept below Nyquist."""
    freq = np.minimum(np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,)), 0.45 * sr)
    return np.sin(phase + running_phase(freq, sr))


def running_phase(freq: np.ndarray, sr: int) -> np.ndarray:
    """Running phase (radians, wrapped to [0, 2 pi)) of an instantaneous frequency track."""
    return 2 * np.pi * np.mod(np.cumsum(freq) / sr, 1.0)


def harmonics(f0: np.ndarray | float, sr: int, n: int, weights: Sequence[float]) -> np.ndarray:
    """Sum of harmonics k*f0 (k = 1, 2, ...) with the given weights; those above Nyquist dropped."""
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    rotation = np.exp(1j * running_phase(f0, sr))
    partial, out = rotation.copy(), np.zeros(n)
    for k, weight in enumerate(weights, start=1):  # partial = exp(i k phase)
        if k * f0.max() >= 0.45 * sr:
            break
        out += weight * partial.imag
        partial *= rotation
    return out


def decay(n: int, sr: int, tau: float, attack: float = 0.002) -> np.ndarray:
    """Linear attack over `attack` s, then exponential decay with time constant `tau` s."""
    t = np.arange(n) / sr
    return np.minimum(t / attack, 1.0) * np.exp(-t / tau)


def gate(n: int, sr: int, spans: Sequence[tuple[float, float]], ramp: float = 0.01) -> np.ndarray:
    """0/1 envelope that is on over each (start s, stop s) span, with short linear ramps."""
    env = np.zeros(n)
    for start, stop in spans:
        first, last = max(int(start * sr), 0), min(int(np.ceil(stop * sr)) + 1, n)
        t = np.arange(first, last) / sr
        ramps = np.clip(np.minimum(t - start, stop - t) / ramp, 0.0, 1.0)
        env[first:last] = np.maximum(env[first:last], ramps)
    return env


def place(n: int, sr: int, times: Sequence[float], event: Callable[[int], np.ndarray]
           ) -> np.ndarray:
    """Add `event(i)` (a short waveform) at each onset time, cut at the end of the signal."""
    out = np.zeros(n)
    for i, onset in enumerate(times):
        start = int(onset * sr)
        if start >= n:
            continue
        wave = event(i)[: n - start]
        out[start:start + len(wave)] += wave
    return out


def periodic_onsets(rng: np.random.Generator, seconds: float, period: float, jitter: float
                     ) -> np.ndarray:
    """Onsets roughly every `period` s, each moved by up to `jitter` s, from a random phase."""
    onsets = np.arange(rng.uniform(0, period), seconds, period)
    return onsets + rng.uniform(-jitter, jitter, len(onsets))


def bandpass(x: np.ndarray, sr: int, low: float, high: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass; the upper edge is kept below Nyquist."""
    high = min(high, 0.45 * sr)
    sos = scipy.signal.butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, x)


def lowpass(x: np.ndarray, sr: float, cutoff: float, order: int = 4) -> np.ndarray:
    sos = scipy.signal.butter(order, min(cutoff, 0.45 * sr), btype="lowpass", fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, x)


def shaped_noise(rng: np.random.Generator, n: int, sr: float,
                  gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Unit-RMS Gaussian noise with magnitude response `gain(frequency in Hz)`, made by one FFT."""
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / sr), sr / n)
    spectrum = rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))
    spectrum *= gain(freqs)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    return shaped_noise(rng, n, 1.0, lambda f: f ** (-exponent / 2))


def babble(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Distant babble: speech-band noise under the summed syllable-rate (3-6 Hz) envelopes of a
    few talkers, unit RMS."""
    low, high = rng.uniform(150, 400), rng.uniform(2000, 4000)

    def speech_band(f: np.ndarray) -> np.ndarray:  # 2nd-order Butterworth band-pass magnitude
        below, above = np.square(np.square(low / f)), np.square(np.square(f / high))
        return 1 / np.sqrt((1 + below) * (1 + above))

    voices = shaped_noise(rng, n, sr, speech_band)
    coarse = np.arange(0, n + 100, 100)  # envelopes are drawn at sr / 100
    syllables = sum(np.abs(lowpass(rng.standard_normal(len(coarse)), sr / 100,
                                    rng.uniform(3, 6), order=2))
                    for _ in range(int(rng.integers(3, 7))))
    out = voices * np.interp(np.arange(n), coarse, syllables)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-12)


def background(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Unit-RMS background: noise between pink and brown, with distant babble mixed in."""
    noise = colored_noise(rng, n, rng.uniform(0.7, 1.5))
    noise += rng.uniform(0.1, 0.6) * babble(rng, n, sr)
    return noise / np.sqrt(np.mean(noise ** 2))

