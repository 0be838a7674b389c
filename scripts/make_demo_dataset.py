"""Synthesise a small VGG-Sound-shaped demo dataset: 10 everyday sound classes, made procedurally.

The output follows the VGG-Sound manual-download layout that the TFDS builder reads:

    DIR/vggsound.csv   youtube_id,start_seconds,label,split   (no header, like the real file)
    DIR/classes.txt    the class names, sorted, one per line
    DIR/README.txt     what was generated, and which files and rows are broken on purpose
    DIR/audio/**/<youtube_id>_<start_seconds:06d>.<ext>   (nested folders: the builder searches)

Clips vary in length, sample rate, channel count and container (WAV, FLAC, OGG, MP3, and M4A when
ffmpeg is installed), carry background noise at a random SNR, and one is digital silence. A handful
of files and CSV rows are broken in distinct ways so that the builder's skip-and-count paths run.
The same seed always gives the same CSV and the same decoded audio.

    python scripts/make_demo_dataset.py --out demo --seed 0
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import shutil
import string
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.signal

from asf_jax.datasets.manual_dir import clip_key
from asf_jax.datasets.synthetic import FORMATS, write_audio, write_lists

CLASS_NAMES: tuple[str, ...] = (
    "siren", "beeping", "engine idling", "dripping", "clock ticking",
    "whistling", "rain", "heartbeat", "doorbell", "drilling",
)

AUDIO_FOLDERS = ("audio/part0", "audio/part1/sub", "audio/part2/deeper/nested")
ID_ALPHABET = string.ascii_letters + string.digits + "-_"
README_MARKER = "VGG-Sound-style demo dataset"

# Reasons the builder must skip an entry, each exercised once (malformed rows twice).
BROKEN_REASONS = (
    "corrupt_file", "empty_file", "truncated_file", "missing_file",
    "unknown_label", "unknown_split", "duplicate_row", "malformed_row",
)

SoundFn = Callable[[np.random.Generator, int, int], np.ndarray]


# ------------------------------------------------------------------------------------------------
# Shared signal helpers.
# ------------------------------------------------------------------------------------------------


def _oscillator(freq: np.ndarray | float, sr: int, n: int, phase: float = 0.0) -> np.ndarray:
    """Sine following an instantaneous frequency (Hz, scalar or per sample), kept below Nyquist."""
    freq = np.minimum(np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,)), 0.45 * sr)
    return np.sin(phase + _phase(freq, sr))


def _phase(freq: np.ndarray, sr: int) -> np.ndarray:
    """Running phase (radians, wrapped to [0, 2 pi)) of an instantaneous frequency track."""
    return 2 * np.pi * np.mod(np.cumsum(freq) / sr, 1.0)


def _harmonics(f0: np.ndarray | float, sr: int, n: int, weights: Sequence[float]) -> np.ndarray:
    """Sum of harmonics k*f0 (k = 1, 2, ...) with the given weights; those above Nyquist dropped."""
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    rotation = np.exp(1j * _phase(f0, sr))
    partial, out = rotation.copy(), np.zeros(n)
    for k, weight in enumerate(weights, start=1):  # partial = exp(i k phase)
        if k * f0.max() >= 0.45 * sr:
            break
        out += weight * partial.imag
        partial *= rotation
    return out


def _decay(n: int, sr: int, tau: float, attack: float = 0.002) -> np.ndarray:
    """Linear attack over `attack` s, then exponential decay with time constant `tau` s."""
    t = np.arange(n) / sr
    return np.minimum(t / attack, 1.0) * np.exp(-t / tau)


def _gate(n: int, sr: int, spans: Sequence[tuple[float, float]], ramp: float = 0.01) -> np.ndarray:
    """0/1 envelope that is on over each (start s, stop s) span, with short linear ramps."""
    env = np.zeros(n)
    for start, stop in spans:
        first, last = max(int(start * sr), 0), min(int(np.ceil(stop * sr)) + 1, n)
        t = np.arange(first, last) / sr
        ramps = np.clip(np.minimum(t - start, stop - t) / ramp, 0.0, 1.0)
        env[first:last] = np.maximum(env[first:last], ramps)
    return env


def _place(n: int, sr: int, times: Sequence[float], event: Callable[[int], np.ndarray]
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


def _periodic_onsets(rng: np.random.Generator, seconds: float, period: float, jitter: float
                     ) -> np.ndarray:
    """Onsets roughly every `period` s, each moved by up to `jitter` s, from a random phase."""
    onsets = np.arange(rng.uniform(0, period), seconds, period)
    return onsets + rng.uniform(-jitter, jitter, len(onsets))


def _bandpass(x: np.ndarray, sr: int, low: float, high: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass; the upper edge is kept below Nyquist."""
    high = min(high, 0.45 * sr)
    sos = scipy.signal.butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, x)


def _lowpass(x: np.ndarray, sr: float, cutoff: float, order: int = 4) -> np.ndarray:
    sos = scipy.signal.butter(order, min(cutoff, 0.45 * sr), btype="lowpass", fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, x)


def _shaped_noise(rng: np.random.Generator, n: int, sr: float,
                  gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Unit-RMS Gaussian noise with magnitude response `gain(frequency in Hz)`, made by one FFT."""
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / sr), sr / n)
    spectrum = rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))
    spectrum *= gain(freqs)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    return _shaped_noise(rng, n, 1.0, lambda f: f ** (-exponent / 2))


def _babble(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Distant babble: speech-band noise under the summed syllable-rate (3-6 Hz) envelopes of a
    few talkers, unit RMS."""
    low, high = rng.uniform(150, 400), rng.uniform(2000, 4000)

    def speech_band(f: np.ndarray) -> np.ndarray:  # 2nd-order Butterworth band-pass magnitude
        below, above = np.square(np.square(low / f)), np.square(np.square(f / high))
        return 1 / np.sqrt((1 + below) * (1 + above))

    voices = _shaped_noise(rng, n, sr, speech_band)
    coarse = np.arange(0, n + 100, 100)  # envelopes are drawn at sr / 100
    syllables = sum(np.abs(_lowpass(rng.standard_normal(len(coarse)), sr / 100,
                                    rng.uniform(3, 6), order=2))
                    for _ in range(int(rng.integers(3, 7))))
    out = voices * np.interp(np.arange(n), coarse, syllables)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-12)


def _background(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Unit-RMS background: noise between pink and brown, with distant babble mixed in."""
    noise = _colored_noise(rng, n, rng.uniform(0.7, 1.5))
    noise += rng.uniform(0.1, 0.6) * _babble(rng, n, sr)
    return noise / np.sqrt(np.mean(noise ** 2))


# ------------------------------------------------------------------------------------------------
# One function per class: (rng, sample rate, samples) -> clean mono signal.
# ------------------------------------------------------------------------------------------------


def siren(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Slow up/down frequency sweep (a 'wail'), with a weak second harmonic."""
    t = np.arange(n) / sr
    centre, depth, rate = rng.uniform(700, 900), rng.uniform(200, 400), rng.uniform(0.15, 0.5)
    sweep = centre + depth * scipy.signal.sawtooth(2 * np.pi * rate * t + rng.uniform(0, 6.3), 0.5)
    return _harmonics(sweep, sr, n, [1.0, 0.3, 0.1])


def beeping(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Periodic bursts of a steady tone."""
    freq, period = rng.uniform(2800, 3400), rng.uniform(0.35, 1.0)
    on = period * rng.uniform(0.2, 0.5)
    onsets = _periodic_onsets(rng, n / sr, period, 0.0)
    return _oscillator(freq, sr, n) * _gate(n, sr, [(s, s + on) for s in onsets], ramp=0.005)


def engine_idling(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Low harmonic stack, amplitude-modulated at the firing rate, over rumbling noise."""
    t = np.arange(n) / sr
    firing = rng.uniform(25, 50) * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.2, 1) * t))
    stack = _harmonics(firing, sr, n, [1.0 / k for k in range(1, 16)])
    pulses = 0.5 + 0.5 * np.sin(_phase(firing, sr)) ** 8
    rumble = _lowpass(rng.standard_normal(n), sr, 300) * rng.uniform(0.1, 0.3)
    return stack * pulses + rumble


def dripping(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Sparse short, quickly decaying upward chirps (water drops)."""
    onsets = np.cumsum(rng.uniform(0.15, 0.7, int(n / sr / 0.15) + 1))

    def drop(_: int) -> np.ndarray:
        size = int(0.1 * sr)
        f_start = rng.uniform(500, 900)
        chirp = np.linspace(f_start, f_start * rng.uniform(1.6, 2.2), size)
        return _oscillator(chirp, sr, size) * _decay(size, sr, rng.uniform(0.015, 0.035), 0.001)

    return _place(n, sr, onsets, drop)


def clock_ticking(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Regular short clicks at 1-2 Hz; 'tick' and 'tock' alternate in pitch and loudness."""
    period = 1.0 / rng.uniform(1.0, 2.0)
    tick, tock = rng.uniform(2600, 3400), rng.uniform(1800, 2400)
    size = int(0.03 * sr)
    click = rng.standard_normal(size) * _decay(size, sr, 0.003, 0.0005)

    def strike(i: int) -> np.ndarray:
        freq, gain = (tick, 1.0) if i % 2 == 0 else (tock, 0.7)
        return gain * (_oscillator(freq, sr, size) * _decay(size, sr, 0.003, 0.0005) + click)

    return _place(n, sr, _periodic_onsets(rng, n / sr, period, 0.002), strike)


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
    breaths = _gate(n, sr, [(e - d + 0.02, e - 0.02) for e, d in zip(ends, durations, strict=True)],
                    ramp=0.03)
    return _oscillator(pitch * vibrato, sr, n) * breaths


def rain(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Band-passed hiss plus a dense patter of tiny impulses."""
    hiss = _bandpass(rng.standard_normal(n), sr, rng.uniform(800, 1500), rng.uniform(5000, 9000))
    impulses = np.zeros(n)
    count = int(rng.uniform(150, 400) * n / sr)
    impulses[rng.integers(0, n, count)] = rng.uniform(-1, 1, count) ** 3
    size = int(0.004 * sr)
    patter = np.convolve(impulses, rng.standard_normal(size) * _decay(size, sr, 0.001, 0.0002))
    return 0.5 * hiss / np.std(hiss) + 3 * _bandpass(patter[:n], sr, 1500, 8000, order=2)


def heartbeat(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """'Lub-dub': two low thumps per beat at 1-1.5 Hz, the second softer and slightly higher."""
    period, gap = 1.0 / rng.uniform(1.0, 1.5), rng.uniform(0.22, 0.32)
    low = rng.uniform(40, 60)
    size = int(0.15 * sr)

    def thump(i: int) -> np.ndarray:
        freq, gain = (low, 1.0) if i % 2 == 0 else (low * 1.4, 0.6)
        sweep = np.linspace(freq * 1.5, freq, size)
        return gain * _oscillator(sweep, sr, size) * _decay(size, sr, 0.04, 0.01)

    beats = _periodic_onsets(rng, n / sr, period, 0.02)
    onsets = np.sort(np.concatenate([beats, beats + gap]))
    return _place(n, sr, onsets, thump)


def doorbell(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """Ding-dong: two decaying bell tones (a third apart) with inharmonic partials."""
    ding = rng.uniform(550, 900)
    dong = ding / 2 ** (rng.choice([3, 4, 5]) / 12)
    size = int(1.5 * sr)
    tau = rng.uniform(0.3, 0.7)

    def bell(f0: float) -> np.ndarray:
        partials = sum(w * _oscillator(f0 * r, sr, size, rng.uniform(0, 6.3))
                       for r, w in ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25)))
        return partials * _decay(size, sr, tau)

    presses = np.arange(rng.uniform(0, 1.0), n / sr, rng.uniform(2.0, 3.5))
    ding_dong = rng.uniform(0.4, 0.7)
    times = np.sort(np.concatenate([presses, presses + ding_dong]))
    return _place(n, sr, times, lambda i: bell(ding if i % 2 == 0 else dong))


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
    buzz = _harmonics(f0, sr, n, [1.0 / np.sqrt(k) for k in range(1, 31)])
    grit = _bandpass(rng.standard_normal(n), sr, 1000, 6000) * 0.5
    return (buzz / np.std(buzz) + grit) * _gate(n, sr, spans, ramp=0.04)


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
    noise = _background(rng, n, sr)
    tracks = [clean + noise_gain * noise]
    if channels == 2:  # the other microphone: a little delay and gain, partly its own noise
        delay = int(rng.integers(1, int(0.002 * sr) + 2))
        shifted = np.concatenate([np.zeros(delay), clean[:-delay]]) * rng.uniform(0.7, 1.0)
        own_noise = _colored_noise(rng, n, 1.0)
        tracks.append(shifted + noise_gain * (0.8 * noise + 0.6 * own_noise))
    audio = np.stack(tracks, axis=1)
    audio *= rng.uniform(0.25, 0.9) / np.abs(audio).max()
    return audio.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Planning the dataset.
# ------------------------------------------------------------------------------------------------


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
    def filename(self) -> str:
        return clip_key(self.youtube_id, self.start) + FORMATS[self.fmt][0]

    @property
    def path(self) -> str:
        """Relative to the dataset folder."""
        return f"{self.folder}/{self.filename}"

    @property
    def row(self) -> list[str]:
        return [self.youtube_id, str(self.start), self.label, self.split]


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    """What `make_demo_dataset` wrote; `expected_kept` is what the builder should keep per split."""

    seed: int
    classes: int
    good_clips: dict[str, int]  # synthesised class clips per split
    silent_clips: dict[str, int]  # all-zero (valid) clips per split
    expected_kept: dict[str, int]
    broken: dict[str, int]  # reason -> CSV rows the builder must skip
    broken_files: dict[str, str]  # reason -> the undecodable file (relative path)
    csv_rows: int
    formats: dict[str, int]
    sample_rates: dict[int, int]
    channels: dict[int, int]
    short_clips: int  # shorter than one 5.119 s network input
    m4a_written: bool

    def __str__(self) -> str:
        def fmt(d: dict) -> str:
            return ", ".join(f"{k}: {v}" for k, v in d.items())

        return "\n".join([
            f"demo dataset: seed {self.seed}, {self.classes} classes",
            f"  good clips:     {fmt(self.good_clips)} (+ silent: {fmt(self.silent_clips)})",
            f"  expected kept:  {fmt(self.expected_kept)}",
            f"  broken rows:    {fmt(self.broken)}",
            f"  csv rows:       {self.csv_rows}",
            f"  formats:        {fmt(self.formats)}"
            + ("" if self.m4a_written else " (no M4A: ffmpeg not found)"),
            f"  sample rates:   {fmt(self.sample_rates)}",
            f"  channels:       {fmt(self.channels)}",
            f"  short clips:    {self.short_clips} (< 5.119 s)",
        ])


def _count(values: Iterable) -> dict:
    """How often each value occurs, sorted by value."""
    return dict(sorted(collections.Counter(values).items()))


def _spread(rng: np.random.Generator, n: int, shares: Sequence[tuple[object, float]]) -> list:
    """`n` values in the given proportions (each at least once when n allows), shuffled."""
    counts = [max(1, int(round(share * n))) for _, share in shares]
    counts[0] = n - sum(counts[1:])
    values = [value for (value, _), count in zip(shares, counts, strict=True) for _ in range(count)]
    return [values[i] for i in rng.permutation(n)]


def _youtube_ids(rng: np.random.Generator, n: int) -> list[str]:
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


def _plan_clips(rng: np.random.Generator, clips_per_class: int, test_per_class: int,
                ids: list[str], use_m4a: bool) -> list[ClipPlan]:
    """The good clips: labels and splits in order, the varied attributes spread and shuffled."""
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


# ------------------------------------------------------------------------------------------------
# Writing files.
# ------------------------------------------------------------------------------------------------


def _truncated_wav(sr: int) -> bytes:
    """A WAV header announcing one second of PCM-16 audio, followed by no data at all."""
    data_bytes = 2 * sr
    header = b"RIFF" + (36 + data_bytes).to_bytes(4, "little") + b"WAVEfmt "
    header += (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    header += sr.to_bytes(4, "little") + (2 * sr).to_bytes(4, "little")
    header += (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    return header + b"data" + data_bytes.to_bytes(4, "little")


def _prepare_out_dir(out: Path) -> None:
    """Create `out`, or clear a previous demo dataset there; refuse any other non-empty folder."""
    if out.exists() and any(out.iterdir()):
        readme = out / "README.txt"
        if not (readme.is_file() and readme.read_text().startswith(README_MARKER)):
            raise FileExistsError(f"{out} is not empty and does not hold a demo dataset")
        shutil.rmtree(out / "audio", ignore_errors=True)
        for name in ("vggsound.csv", "classes.txt", "README.txt"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _write_broken_files(out: Path, rng: np.random.Generator, bad: dict[str, ClipPlan]) -> None:
    """The files behind the broken rows: valid audio where only the row is wrong, junk otherwise."""
    for reason in ("unknown_label", "unknown_split"):
        plan = bad[reason]
        noise = 0.1 * _colored_noise(rng, int(plan.seconds * plan.sample_rate), 1.0)
        write_audio(out / plan.path, noise[:, None], plan.sample_rate, plan.fmt)
    contents = {"corrupt_file": rng.bytes(4096), "empty_file": b"",
                "truncated_file": _truncated_wav(16000)}
    for reason, content in contents.items():
        (out / bad[reason].path).parent.mkdir(parents=True, exist_ok=True)
        (out / bad[reason].path).write_bytes(content)


def _broken_notes(bad: dict[str, ClipPlan], duplicated: ClipPlan, malformed: list[list[str]]
                  ) -> list[str]:
    """One README line per broken file or row: where it is and why the builder must skip it."""
    def row(plan: ClipPlan) -> str:
        return ",".join(plan.row)

    return [
        f"{bad['corrupt_file'].path}: corrupt_file, 4096 random bytes with a .wav name",
        f"{bad['empty_file'].path}: empty_file, 0 bytes",
        f"{bad['truncated_file'].path}: truncated_file, a WAV header announcing 1 s of audio "
        "and no sample data after it (decodes to 0 samples)",
        f"row {row(bad['missing_file'])}: missing_file, its audio file does not exist",
        f"row {row(bad['unknown_label'])}: unknown_label, not in classes.txt (the file is valid)",
        f"row {row(bad['unknown_split'])}: unknown_split, neither train nor test (the file is "
        "valid)",
        f"row {row(duplicated)}: duplicate_row, the same row twice; the first one counts",
        f"row {','.join(malformed[0])}: malformed_row, 3 fields instead of 4",
        f"row {','.join(malformed[1])}: malformed_row, start_seconds is not an integer",
    ]


def _readme(summary: DemoSummary, broken_notes: list[str]) -> str:
    return "\n".join([
        f"{README_MARKER}, generated by scripts/make_demo_dataset.py (seed {summary.seed}).",
        "",
        f"{len(CLASS_NAMES)} procedurally synthesised classes (see classes.txt): "
        + ", ".join(CLASS_NAMES) + ".",
        "Every clip has background noise (between pink and brown, with distant babble) at a",
        "random 5-25 dB SNR and is peak-normalised to a random level <= 0.9. The layout is",
        "VGG-Sound's manual download: vggsound.csv (youtube_id,start_seconds,label,split; no",
        "header) and audio files named <youtube_id>_<start_seconds:06d>.<ext> in nested folders",
        "under audio/.",
        "",
        str(summary),
        "",
        "Also on purpose: one all-zero (digital silence) clip in the train split, one video id",
        "used twice with two start times, and clips shorter than one network input (5.119 s).",
        "M4A clips were written with ffmpeg." if summary.m4a_written else
        "M4A clips were skipped (ffmpeg was not found on PATH); those clips are WAV instead.",
        "",
        "Broken on purpose (the builder must skip and count each):",
        *[f"  - {note}" for note in broken_notes],
        "",
    ])


def make_demo_dataset(out_dir: str | Path, *, seed: int = 0, clips_per_class: int = 30,
                      test_per_class: int = 6) -> DemoSummary:
    """Write the demo dataset to `out_dir` (see the module docstring) and return its summary."""
    if not 0 < test_per_class < clips_per_class:
        raise ValueError(f"need 0 < test_per_class ({test_per_class}) < clips_per_class "
                         f"({clips_per_class})")
    out = Path(out_dir)
    _prepare_out_dir(out)
    rng = np.random.default_rng(seed)
    use_m4a = shutil.which("ffmpeg") is not None
    n_good = clips_per_class * len(CLASS_NAMES)
    ids = _youtube_ids(rng, n_good + len(BROKEN_REASONS))
    plans = _plan_clips(rng, clips_per_class, test_per_class, ids, use_m4a)
    extra_ids = iter(ids[n_good:])

    def extra(label: str, split: str, fmt: str = "wav", seconds: float = 3.0) -> ClipPlan:
        return ClipPlan(next(extra_ids), 10 * int(rng.integers(0, 30)), label, split, fmt, 16000,
                        1, seconds, AUDIO_FOLDERS[int(rng.integers(3))])

    silent = extra(CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))], "train", seconds=10.0)
    bad = {
        "corrupt_file": extra(CLASS_NAMES[0], "train"),
        "empty_file": extra(CLASS_NAMES[1], "test", "flac"),
        "truncated_file": extra(CLASS_NAMES[2], "train"),
        "missing_file": extra(CLASS_NAMES[3], "test"),
        "unknown_label": extra("kazoo", "train"),
        "unknown_split": extra(CLASS_NAMES[4], "val"),
    }
    duplicated = plans[len(plans) // 2]
    malformed_plan = extra(CLASS_NAMES[5], "test")
    malformed = [malformed_plan.row[:3],
                 [malformed_plan.youtube_id, "n/a", *malformed_plan.row[2:]]]

    for plan, clip_rng in zip(plans, rng.spawn(len(plans)), strict=True):
        audio = synthesise(plan.label, clip_rng, plan.sample_rate, plan.seconds, plan.channels)
        write_audio(out / plan.path, audio, plan.sample_rate, plan.fmt)
    write_audio(out / silent.path, np.zeros((int(silent.seconds * silent.sample_rate), 1)),
                 silent.sample_rate, silent.fmt)
    _write_broken_files(out, rng, bad)

    rows = [p.row for p in [*plans, silent, *bad.values(), duplicated]] + malformed
    rows.sort(key=lambda row: (row[0], row[1]))  # stable: the duplicate follows its original
    write_lists(out, rows, sorted(CLASS_NAMES))

    written = [*plans, silent]
    good = {s: sum(p.split == s for p in plans) for s in ("train", "test")}
    silent_clips = {s: int(silent.split == s) for s in ("train", "test")}
    summary = DemoSummary(
        seed=seed, classes=len(CLASS_NAMES), good_clips=good, silent_clips=silent_clips,
        expected_kept={s: good[s] + silent_clips[s] for s in good},
        broken={r: 2 if r == "malformed_row" else 1 for r in BROKEN_REASONS},
        broken_files={r: bad[r].path for r in ("corrupt_file", "empty_file", "truncated_file")},
        csv_rows=len(rows),
        formats=_count(p.fmt for p in written),
        sample_rates=_count(p.sample_rate for p in written),
        channels=_count(p.channels for p in written),
        short_clips=sum(p.seconds < 5.119 for p in written),
        m4a_written=use_m4a,
    )
    (out / "README.txt").write_text(_readme(summary, _broken_notes(bad, duplicated, malformed)))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Synthesise a small VGG-Sound-style demo dataset (manual-download layout).")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder: created, or replaced if it holds an earlier demo "
                             "dataset; any other non-empty folder is refused")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed; the same seed gives the same CSV and audio (default 0)")
    parser.add_argument("--clips-per-class", type=int, default=30,
                        help="good clips per class, train and test together (default 30)")
    parser.add_argument("--test-per-class", type=int, default=6,
                        help="of those, clips per class in the test split (default 6)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    summary = make_demo_dataset(args.out, seed=args.seed, clips_per_class=args.clips_per_class,
                                test_per_class=args.test_per_class)
    print(f"wrote {args.out}")
    print(summary)
    print(f"  took {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
