"""Reconstruction: the JAX STFT pair matches the front end; an all-ones mask returns the input."""

import jax.numpy as jnp
import numpy as np
import pytest

from asf_jax import audio
from asf_jax.explain import reconstruct
from asf_jax.recipe import SLOWFAST

from .conftest import DATA

# Measured on short.wav (3.2 s) with 32 iterations: 0.19 against the original |STFT|, most of it the
# mel -> linear inversion itself (its magnitude alone is 0.17 away); 0.06 in the mel domain.
GRIFFIN_LIM_SC_BOUND = 0.25
GRIFFIN_LIM_MEL_SC_BOUND = 0.10


@pytest.fixture(scope="module")
def short():
    return audio.load_audio(DATA / "short.wav")


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference ** 2) / np.sum((estimate - reference) ** 2)))


def test_jax_stft_pair_matches_the_front_end():
    signal = np.random.default_rng(0).normal(size=4801).astype(np.float32) * 0.1
    expected = audio.stft(signal, SLOWFAST)
    spectrum = np.asarray(reconstruct.stft(jnp.asarray(signal[None]), SLOWFAST))[0]
    np.testing.assert_allclose(spectrum, expected, atol=1e-4 * np.abs(expected).max())
    back = np.asarray(reconstruct.istft(jnp.asarray(expected[None]), len(signal), SLOWFAST))[0]
    np.testing.assert_allclose(back, signal, atol=1e-5)


def test_linear_mask_averages_mel_bands():
    weights = reconstruct.mel_to_linear_weights(SLOWFAST)
    assert weights.shape == (SLOWFAST.n_fft // 2 + 1, SLOWFAST.num_mels)
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-5)
    assert weights.min() >= 0
    np.testing.assert_allclose(reconstruct.linear_mask(np.ones((7, 128)), SLOWFAST), 1, atol=1e-5)
    low = np.zeros((7, 128), np.float32)
    low[:, :64] = 1  # the lower half of the mel bands: keeps low linear bins, drops high ones
    gain = reconstruct.linear_mask(low, SLOWFAST)
    assert gain[:50].min() == pytest.approx(1) and gain[-200:].max() == pytest.approx(0)


def test_phase_preserving_all_ones_is_the_input(short):
    frames = 1 + len(short) // SLOWFAST.hop_length
    kept = reconstruct.phase_preserving(short, np.ones((frames, 128)), SLOWFAST)
    assert kept.method == "phase"
    assert snr_db(kept.salient, short) > 30
    assert np.abs(kept.complement).max() < 1e-3
    dropped = reconstruct.phase_preserving(short, np.zeros((frames, 128)), SLOWFAST)
    assert snr_db(dropped.complement, short) > 30
    with pytest.raises(ValueError, match="frames"):
        reconstruct.phase_preserving(short, np.ones((frames - 1, 128)), SLOWFAST)


def test_griffin_lim_all_ones_is_close_to_the_input(short):
    logmel = audio.logmel(short, SLOWFAST)
    rebuilt = reconstruct.from_logmel(logmel, np.ones_like(logmel), SLOWFAST, len(short))
    assert rebuilt.method == "griffinlim" and rebuilt.salient.shape == short.shape
    assert reconstruct.spectral_convergence(rebuilt.salient, short, SLOWFAST) < GRIFFIN_LIM_SC_BOUND
    mel = np.exp(logmel.T) - SLOWFAST.log_offset
    got = audio.mel_filterbank(SLOWFAST) @ np.abs(audio.stft(rebuilt.salient, SLOWFAST))
    assert np.linalg.norm(got - mel) / np.linalg.norm(mel) < GRIFFIN_LIM_MEL_SC_BOUND
    assert np.abs(rebuilt.complement).max() < 1e-3  # the complement of everything is silence


def test_mel_inversion_is_non_negative_and_consistent(short):
    mel = np.exp(audio.logmel(short, SLOWFAST).T) - SLOWFAST.log_offset
    magnitude = np.asarray(reconstruct.mel_to_magnitude(jnp.asarray(mel[None]), SLOWFAST))[0]
    assert magnitude.min() >= 0
    error = audio.mel_filterbank(SLOWFAST) @ magnitude - mel
    assert np.linalg.norm(error) / np.linalg.norm(mel) < 0.03
