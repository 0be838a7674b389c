"""The demo's ten everyday sound classes, one function each, and a noisy clip of any of them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.ndimage
import scipy.signal

from asf_jax.datasets.demo.signals import (
    background,
    bandpass,
    colored_noise,
    decay,
    gate,
    harmonics,
    lowpass,
    oscillator,
    periodic_onsets,
    place,
    running_phase,
)

CLASS_NAMES: tuple[str, ...] = (
    "siren", "beeping", "engine idling", "dripping", "clock ticking",
    "whistling", "rain", "heartbeat", "doorbell", "drilling",
)

SoundFn = Callable[[np.random.Generator, int, int], np.ndarray]


def siren(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Slow up/down frequency sweep (a 'wail'), with a weak second harmonic."""
    t = np.arange(n) / sr
    centre, depth, rate = rng.uniform(700, 900), rng.uniform(200, 400), rng.uniform(0.15, 0.5)
    sweep = centre + depth * scipy.signal.sawtooth(2 * np.pi * rate * t + rng.uniform(0, 6.3), 0.5)
    return harmonics(sweep, sr, n, [1.0, 0.3, 0.1])


def beeping(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Periodic bursts of a steady tone."""
    freq, period = rng.uniform(2800, 3400), rng.uniform(0.35, 1.0)
    on = period * rng.uniform(0.2, 0.5)
    onsets = periodic_onsets(rng, n / sr, period, 0.0)
    return oscillator(freq, sr, n) * gate(n, sr, [(s, s + on) for s in onsets], ramp=0.005)


def engine_idling(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Low harmonic stack, amplitude-modulated at the firing rate, over rumbling noise."""
    t = np.arange(n) / sr
    firing = rng.uniform(25, 50) * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.2, 1) * t))
    stack = harmonics(firing, sr, n, [1.0 / k for k in range(1, 16)])
    pulses = 0.5 + 0.5 * np.sin(running_phase(firing, sr)) ** 8
    rumble = lowpass(rng.standard_normal(n), sr, 300) * rng.uniform(0.1, 0.3)
    return stack * pulses + rumble


def dripping(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Sparse short, quickly decaying upward chirps (water drops)."""
    onsets = np.cumsum(rng.uniform(0.15, 0.7, int(n / sr / 0.15) + 1))

    def drop(_: int) -> np.ndarray:
        size = int(0.1 * sr)
        f_start = rng.uniform(500, 900)
        chirp = np.linspace(f_start, f_start * rng.uniform(1.6, 2.2), size)
        return oscillator(chirp, sr, size) * decay(size, sr, rng.uniform(0.015, 0.035), 0.001)

    return place(n, sr, onsets, drop)


def clock_ticking(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Regular short clicks at 1-2 Hz; 'tick' and 'tock' alternate in pitch and loudness."""
    period = 1.0 / rng.uniform(1.0, 2.0)
    tick, tock = rng.uniform(2600, 3400), rng.uniform(1800, 2400)
    size = int(0.03 * sr)
    click = rng.standard_normal(size) * decay(size, sr, 0.003, 0.0005)

    def strike(i: int) -> np.ndarray:
        freq, gain = (tick, 1.0) if i % 2 == 0 else (tock, 0.7)
        return gain * (oscillator(freq, sr, size) * decay(size, sr, 0.003, 0.0005) + click)

    return place(n, sr, periodic_onsets(rng, n / sr, period, 0.002), strike)


def whistling(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Pure tone with vibrato stepping through a little pentatonic melody."""
    t = np.arange(n) / sr
    base = rng.uniform(1300, 1800)
    durations = rng.uniform(0.25, 0.8, int(n / sr / 0.25) + 1)
    notes = base * 2 ** (rng.choice([0, 2, 4, 7, 9], len(durations)) / 12)
    ends = np.cumsum(durations)
    pitch = notes[np.minimum(np.searchsorted(ends, t), len(notes) - 1)]
    pitch = scipy.ndimage.uniform_filter1d(pitch, int(0.03 * sr), mode="nearest")  # glides
    vibrato = 1 + rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * rng.uniform(5, 7) * t)
    breaths = gate(n, sr, [(e - d + 0.02, e - 0.02) for e, d in zip(ends, durations, strict=True)],
                    ramp=0.03)
    return oscillator(pitch * vibrato, sr, n) * breaths


def rain(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Band-passed hiss plus a dense patter of tiny impulses."""
    hiss = bandpass(rng.standard_normal(n), sr, rng.uniform(800, 1500), rng.uniform(5000, 9000))
    impulses = np.zeros(n)
    count = int(rng.uniform(150, 400) * n / sr)
    impulses[rng.integers(0, n, count)] = rng.uniform(-1, 1, count) ** 3
    size = int(0.004 * sr)
    patter = np.convolve(impulses, rng.standard_normal(size) * decay(size, sr, 0.001, 0.0002))
    return 0.5 * hiss / np.std(hiss) + 3 * bandpass(patter[:n], sr, 1500, 8000, order=2)


def heartbeat(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """'Lub-dub': two low thumps per beat at 1-1.5 Hz, the second softer and slightly higher."""
    period, gap = 1.0 / rng.uniform(1.0, 1.5), rng.uniform(0.22, 0.32)
    low = rng.uniform(40, 60)
    size = int(0.15 * sr)

    def thump(i: int) -> np.ndarray:
        freq, gain = (low, 1.0) if i % 2 == 0 else (low * 1.4, 0.6)
        sweep = np.linspace(freq * 1.5, freq, size)
        return gain * oscillator(sweep, sr, size) * decay(size, sr, 0.04, 0.01)

    beats = periodic_onsets(rng, n / sr, period, 0.02)
    onsets = np.sort(np.concatenate([beats, beats + gap]))
    return place(n, sr, onsets, thump)


def doorbell(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Ding-dong: two decaying bell tones (a third apart) with inharmonic partials."""
    ding = rng.uniform(550, 900)
    dong = ding / 2 ** (rng.choice([3, 4, 5]) / 12)
    size = int(1.5 * sr)
    tau = rng.uniform(0.3, 0.7)

    def bell(f0: float) -> np.ndarray:
        partials = sum(w * oscillator(f0 * r, sr, size, rng.uniform(0, 6.3))
                       for r, w in ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25)))
        return partials * decay(size, sr, tau)

    presses = np.arange(rng.uniform(0, 1.0), n / sr, rng.uniform(2.0, 3.5))
    ding_dong = rng.uniform(0.4, 0.7)
    times = np.sort(np.concatenate([presses, presses + ding_dong]))
    return place(n, sr, times, lambda i: bell(ding if i % 2 == 0 else dong))


def drilling(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Broadband harmonic buzz (a motor) in on/off bursts, spinning up at each start."""
    t = np.arange(n) / sr
    spans, start = [], rng.uniform(0, 0.5)
    while start < n / sr:
        stop = start + rng.uniform(0.6, 2.0)
        spans.append((start, stop))
        start = stop + rng.uniform(0.3, 1.0)
    starts = np.array([s for s, _ in spans])
    since_on = t - starts[np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)]
    f0 = rng.uniform(90, 180) * (1 - 0.3 * np.exp(-since_on / 0.15))
    buzz = harmonics(f0, sr, n, [1.0 / np.sqrt(k) for k in range(1, 31)])
    grit = bandpass(rng.standard_normal(n), sr, 1000, 6000) * 0.5
    return (buzz / np.std(buzz) + grit) * gate(n, sr, spans, ramp=0.04)


SOUNDS: dict[str, SoundFn] = {
    "siren": siren, "beeping": beeping, "engine idling": engine_idling, "dripping": dripping,
    "clock ticking": clock_ticking, "whistling": whistling, "rain": rain,
    "heartbeat": heartbeat, "doorbell": doorbell, "drilling": drilling,
}


def synthesise(label: str, rng: np.random.Generator, sr: int, seconds: float, channels: int
               ) -> np.ndarray:
    """(samples, channels) float32 clip of `label` with background noise, peak-normalised."""
    n = int(round(seconds * sr))
    clean = SOUNDS[label](rng, sr, n)
    clean /= np.sqrt(np.mean(clean ** 2)) + 1e-12
    snr_db = rng.uniform(5, 25)
    noise_gain = 10 ** (-snr_db / 20)
    noise = background(rng, n, sr)
    tracks = [clean + noise_gain * noise]
    if channels == 2:  # the other microphone: a little delay and gain, partly its own noise
        delay = int(rng.integers(1, int(0.002 * sr) + 2))
        shifted = np.concatenate([np.zeros(delay), clean[:-delay]]) * rng.uniform(0.7, 1.0)
        own_noise = colored_noise(rng, n, 1.0)
        tracks.append(shifted + noise_gain * (0.8 * noise + 0.6 * own_noise))
    audio = np.stack(tracks, axis=1)
    audio *= rng.uniform(0.25, 0.9) / np.abs(audio).max()
    return audio.astype(np.float32)

