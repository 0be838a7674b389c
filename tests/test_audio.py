"""The log-mel front end: the fast path against librosa's computation and the shipped fixtures."""

import os
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile

from asf_jax import audio
from asf_jax.recipe import SLOW, SLOWFAST, AudioRecipe

DATA = Path(__file__).parent / "data"
SR = 16000


def librosa_logmel(samples: np.ndarray, recipe: AudioRecipe) -> np.ndarray:
    """The reference computation: librosa's STFT, its magnitude, the dense filterbank, the log."""
    magnitude = np.abs(audio.stft(samples, recipe))  # (bins, frames)
    return np.log(audio.mel_filterbank(recipe) @ magnitude + recipe.log_offset).T


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    lowpass = np.convolve(rng.standard_normal(t.size), np.hanning(31) / 15.5, mode="same")
    impulse = np.zeros(SR)
    impulse[4321] = 1.0
    return {
        "noise": 0.3 * rng.standard_normal(t.size),
        # A pure tone and band-limited noise: bands 100 dB below the frame, where a float32 FFT's
        # rounding error would show (it moved such log-mels by up to 0.2).
        "tone": 0.5 * np.sin(2 * np.pi * 440 * t),
        "band-limited": lowpass,
        "pcm tone": np.round(0.9 * np.sin(2 * np.pi * 1000 * t) * 32767) / 32768,
        "quiet": 1e-4 * rng.standard_normal(t.size),
        "silence": np.zeros(SR),
        "impulse": impulse,
        "one sample": np.array([0.5]),
        "shorter than a window": rng.standard_normal(100),
        "exactly one clip": rng.standard_normal(SLOWFAST.window_samples),
    }


@pytest.mark.filterwarnings("ignore:n_fft=2048 is too large")  # librosa, on the short signals
@pytest.mark.parametrize("recipe", [SLOWFAST, SLOW], ids=lambda r: r.name)
@pytest.mark.parametrize("name", list(_signals()))
def test_logmel_equals_librosa(name: str, recipe: AudioRecipe) -> None:
    samples = _signals()[name].astype(np.float32)
    expected = librosa_logmel(samples, recipe)
    got = audio.logmel(samples, recipe)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert got.shape == (1 + len(samples) // recipe.hop_length, recipe.num_mels)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_logmel_of_a_batch_is_the_logmel_of_each_signal() -> None:
    rng = np.random.default_rng(1)
    batch = rng.standard_normal((2, 3, 5000)).astype(np.float32)
    got = audio.logmel(batch, SLOWFAST)
    assert got.shape == (2, 3, 1 + 5000 // 160, 128)
    for index in np.ndindex(2, 3):
        np.testing.assert_array_equal(got[index], audio.logmel(batch[index], SLOWFAST))


def test_long_signals_are_computed_block_by_block_without_seams() -> None:
    samples = np.random.default_rng(2).standard_normal(160 * 700).astype(np.float32)
    assert 1 + len(samples) // 160 > 2 * audio._FRAMES_PER_BLOCK
    np.testing.assert_allclose(audio.logmel(samples, SLOWFAST),
                               librosa_logmel(samples, SLOWFAST), rtol=0, atol=1e-5)


def test_empty_signal_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty signal"):
        audio.logmel(np.zeros(0, np.float32))


@pytest.mark.parametrize("name", ["long", "short"])
def test_views_match_the_shipped_fixture(name: str) -> None:
    """tests/data/logmel_views.npz: the views of long.wav (10 s) and short.wav (3.2 s)."""
    fixture = np.load(DATA / "logmel_views.npz")
    views = audio.logmel_views(DATA / f"{name}.wav")
    assert views.shape == (2, 512, 128)
    for k in range(2):
        np.testing.assert_allclose(views[k], fixture[f"{name}_view{k}"], rtol=0, atol=1e-5)


def test_stereo_files_are_downmixed_and_mono_files_read_as_they_are(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    left, right = (rng.uniform(-0.5, 0.5, SR).astype(np.float32) for _ in range(2))
    soundfile.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), SR,
                    subtype="FLOAT")
    soundfile.write(tmp_path / "mono.wav", left, SR, subtype="FLOAT")
    np.testing.assert_array_equal(audio.load_audio(tmp_path / "mono.wav"), left)
    np.testing.assert_allclose(audio.load_audio(tmp_path / "stereo.wav"), (left + right) / 2,
                               atol=1e-7)


@pytest.mark.parametrize("recipe", [SLOWFAST, SLOW], ids=lambda r: r.name)
def test_filterbank_and_window_equal_librosas(recipe: AudioRecipe) -> None:
    expected = librosa.filters.mel(sr=recipe.sample_rate, n_fft=recipe.n_fft,
                                   n_mels=recipe.num_mels, fmin=recipe.fmin, fmax=recipe.fmax,
                                   htk=True, norm=None, dtype=np.float32)
    np.testing.assert_array_equal(audio.mel_filterbank(recipe), expected)
    window = librosa.filters.get_window("hann", recipe.win_length, fftbins=True)
    np.testing.assert_allclose(audio.periodic_hann(recipe.win_length), window, rtol=0, atol=1e-15)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_resample_equals_librosas(rate: int) -> None:
    samples = np.random.default_rng(rate).uniform(-0.5, 0.5, 2 * rate + 7).astype(np.float32)
    expected = librosa.resample(samples, orig_sr=rate, target_sr=SR)
    got = audio.resample(samples, rate, SR)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_logmel_and_resampling_import_no_librosa() -> None:
    """librosa's filters and resampler cost each process ~1 s of imports (every build worker)."""
    code = ("import sys, numpy as np\nfrom asf_jax import audio\n"
            "audio.logmel(audio.resample(np.ones(50000, np.float32), 44100, 16000))\n"
            "heavy = ('librosa.core', 'librosa.filters', 'scipy.signal', 'numba')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=dict(os.environ, PYTHONPATH=str(DATA.parent.parent)))
    assert result.stdout.strip() == "[]"
