"""Log-mel masks back to audio you can listen to: the salient part of a recording and the rest.

Two inversions (DESIGN.md, "Explainability"):
- phase-preserving: the mel mask is carried to the linear-frequency STFT of the original audio and
  inverted with the original phase (exact up to the mask; needs the audio);
- Griffin-Lim: from the masked mel magnitude `exp(logmel) - offset` alone, with an STFT that matches
  the forward transform of the recipe (n_fft, hop, periodic Hann of win_length centred in the frame,
  centred frames, zero padding, magnitude not power, HTK mel without normalisation).

The STFT pair and Griffin-Lim are written in JAX (jit, batched) rather than with librosa's
`mel_to_stft` (NNLS, ~10 s per 10-s clip) and `griffinlim` (~3 s), to meet the explainer's time
budget; tests check the pair against `audio.stft` / `librosa.istft`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import scipy.signal

from asf_jax import audio
from asf_jax.recipe import AudioRecipe

MEL_INVERSION_STEPS = 10  # multiplicative NNLS updates after the clipped pseudo-inverse


@dataclasses.dataclass
class Reconstruction:
    """Salient audio, its complement, and how they were made (`method`: "phase" or "griffinlim")."""

    salient: np.ndarray  # (samples,)
    complement: np.ndarray  # (samples,)
    method: str


# ------------------------------------------------------------------------------------------------
# Mel mask -> linear-frequency mask.
# ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def mel_to_linear_weights(recipe: AudioRecipe) -> np.ndarray:
    """(bins, num_mels): each linear bin's filterbank weights over the mel bands, rows summing to 1.

    Bins no filter covers (DC, and above fmax) take the mel band whose centre is nearest.
    """
    fb = audio.mel_filterbank(recipe)  # (mel, bins)
    weights = fb.T.astype(np.float64)  # (bins, mel)
    totals = weights.sum(axis=1, keepdims=True)
    bin_hz = librosa.fft_frequencies(sr=recipe.sample_rate, n_fft=recipe.n_fft)
    centre_hz = librosa.mel_frequencies(recipe.num_mels + 2, fmin=recipe.fmin, fmax=recipe.fmax,
                                        htk=True)[1:-1]
    nearest = np.abs(bin_hz[:, None] - centre_hz[None]).argmin(axis=1)
    uncovered = totals[:, 0] <= 0
    weights[uncovered] = np.eye(recipe.num_mels)[nearest[uncovered]]
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def linear_mask(mask: np.ndarray, recipe: AudioRecipe) -> np.ndarray:
    """(frames, mel) mask in [0, 1] -> (bins, frames): filterbank-weighted mean per linear bin."""
    return mel_to_linear_weights(recipe) @ np.asarray(mask, np.float32).T


def phase_preserving_audio(samples: np.ndarray, masks: np.ndarray, recipe: AudioRecipe
                           ) -> np.ndarray:
    """(n, frames, mel) masks on the log-mel grid of the whole signal -> (n, samples) audio: the
    original STFT under each mask, inverted with the original phase (one STFT for all masks)."""
    spectrum = audio.stft(samples, recipe)  # (bins, frames)
    if spectrum.shape[1] != masks.shape[1]:
        raise ValueError(f"mask has {masks.shape[1]} frames, the audio {spectrum.shape[1]}")
    invert = functools.partial(librosa.istft, hop_length=recipe.hop_length,
                               win_length=recipe.win_length, n_fft=recipe.n_fft, window="hann",
                               center=True, length=len(samples))
    return np.stack([invert(spectrum * linear_mask(mask, recipe)) for mask in masks]
                    ).astype(np.float32)


def phase_preserving(samples: np.ndarray, mask: np.ndarray, recipe: AudioRecipe) -> Reconstruction:
    """The salient audio under `mask` and its complement, with the original phase."""
    salient, complement = phase_preserving_audio(samples, _with_complement(mask), recipe)
    return Reconstruction(salient, complement, "phase")


def _with_complement(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, np.float32)
    return np.stack([mask, 1 - mask])


# ------------------------------------------------------------------------------------------------
# The recipe's STFT pair in JAX.
# ------------------------------------------------------------------------------------------------


def _frame_index(num_frames: int, recipe: AudioRecipe) -> np.ndarray:
    """(frames, win_length) sample indices of each window, in the signal padded by n_fft/2."""
    offset = (recipe.n_fft - recipe.win_length) // 2
    return (np.arange(num_frames)[:, None] * recipe.hop_length + offset
            + np.arange(recipe.win_length)[None])


def _window(recipe: AudioRecipe) -> np.ndarray:
    return scipy.signal.get_window("hann", recipe.win_length, fftbins=True).astype(np.float32)


def _shift(recipe: AudioRecipe) -> np.ndarray:
    """(bins,) phase of a window that starts `offset` samples into its n_fft frame."""
    offset = (recipe.n_fft - recipe.win_length) // 2
    k = np.arange(recipe.n_fft // 2 + 1)
    return np.exp(-2j * np.pi * k * offset / recipe.n_fft).astype(np.complex64)


def _frame_spectra(signal: jax.Array, recipe: AudioRecipe) -> jax.Array:
    """(batch, samples) -> (batch, frames, bins): the STFT without the window-offset phase."""
    pad = recipe.n_fft // 2
    num_frames = 1 + signal.shape[-1] // recipe.hop_length
    padded = jnp.pad(signal, ((0, 0), (pad, pad)))
    frames = padded[:, _frame_index(num_frames, recipe)] * _window(recipe)  # (batch, frames, win)
    return jnp.fft.rfft(frames, n=recipe.n_fft)


def stft(signal: jax.Array, recipe: AudioRecipe) -> jax.Array:
    """(batch, samples) -> (batch, bins, frames) complex; equals `audio.stft` per signal."""
    return (_frame_spectra(signal, recipe) * _shift(recipe)).transpose(0, 2, 1)


def _overlap_add(frames: jax.Array, length: int, recipe: AudioRecipe) -> jax.Array:
    """(batch, frames, win_length) windows -> (batch, length) signal, summed where they overlap.

    Each window is cut into hop-sized blocks and the blocks are added with static shifts: XLA's
    scatter-add is several times slower on the CPU.
    """
    batch, num_frames, win = frames.shape
    hop = recipe.hop_length
    first = (recipe.n_fft - win) // 2 - recipe.n_fft // 2  # frame t starts at sample t*hop + first
    shift, lead = divmod(first, hop)
    parts = -(-(lead + win) // hop)
    blocks = jnp.pad(frames, ((0, 0), (0, 0), (lead, parts * hop - lead - win)))
    blocks = blocks.reshape(batch, num_frames, parts, hop)
    summed = sum(jnp.pad(blocks[:, :, i], ((0, 0), (i, parts - 1 - i), (0, 0)))
                 for i in range(parts))  # (batch, frames + parts - 1, hop)
    flat = summed.reshape(batch, -1)  # flat[j] is sample j + shift * hop
    start = -shift * hop
    flat = jnp.pad(flat, ((0, 0), (0, max(0, start + length - flat.shape[1]))))
    return flat[:, start:start + length]


def _from_frame_spectra(spectra: jax.Array, length: int, recipe: AudioRecipe) -> jax.Array:
    """Inverse of `_frame_spectra`: (batch, frames, bins) -> (batch, length), windowed OLA."""
    window = jnp.asarray(_window(recipe))
    frames = jnp.fft.irfft(spectra, n=recipe.n_fft)[..., :recipe.win_length]
    signal = _overlap_add(frames * window, length, recipe)
    with jax.ensure_compile_time_eval():  # a constant: the summed squared windows
        norm = _overlap_add(jnp.broadcast_to(window ** 2, (1, spectra.shape[1], len(window))),
                            length, recipe)
        norm = jnp.where(norm > 1e-8, norm, 1.0)
    return signal / norm


def istft(spectrum: jax.Array, length: int, recipe: AudioRecipe) -> jax.Array:
    """(batch, bins, frames) -> (batch, length): windowed overlap-add, like `librosa.istft`."""
    return _from_frame_spectra(spectrum.transpose(0, 2, 1) * np.conj(_shift(recipe)), length,
                               recipe)


# ------------------------------------------------------------------------------------------------
# Griffin-Lim from the mel magnitude.
# ------------------------------------------------------------------------------------------------


def mel_to_magnitude(mel: jax.Array, recipe: AudioRecipe) -> jax.Array:
    """(batch, mel, frames) mel magnitude -> (batch, bins, frames) non-negative linear magnitude.

    A clipped pseudo-inverse refined by multiplicative NNLS updates (what `mel_to_stft` solves).
    """
    fb = jnp.asarray(audio.mel_filterbank(recipe))  # (mel, bins)
    pinv = jnp.asarray(np.linalg.pinv(audio.mel_filterbank(recipe)))  # (bins, mel)
    target = fb.T @ mel  # (batch, bins, frames)

    def update(_, x):
        return x * target / (fb.T @ (fb @ x) + 1e-9)

    start = jnp.maximum(pinv @ mel, 1e-6 * mel.max())
    return jax.lax.fori_loop(0, MEL_INVERSION_STEPS, update, start)


@functools.partial(jax.jit, static_argnames=("length", "recipe", "n_iter", "momentum"))
def _griffin_lim(magnitude: jax.Array, key: jax.Array, *, length: int, recipe: AudioRecipe,
                 n_iter: int, momentum: float) -> jax.Array:
    """Fast Griffin-Lim (librosa's momentum form) on a batch of (bins, frames) magnitudes.

    The loop runs on (frames, bins) spectra without the window-offset phase factor: it has unit
    modulus and cancels between the inverse and the forward transform, and the start is random.
    """
    magnitude = magnitude.transpose(0, 2, 1)
    phase = jax.random.uniform(key, magnitude.shape) * 2 * jnp.pi
    angles = jnp.exp(1j * phase).astype(jnp.complex64)

    def step(_, carry):
        angles, previous = carry
        rebuilt = _frame_spectra(_from_frame_spectra(magnitude * angles, length, recipe), recipe)
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        return angles / (jnp.abs(angles) + 1e-16), rebuilt

    angles, _ = jax.lax.fori_loop(0, n_iter, step, (angles, jnp.zeros_like(angles)))
    return _from_frame_spectra(magnitude * angles, length, recipe)


@functools.partial(jax.jit, static_argnames=("recipe",))
def _masked_magnitude(logmel: jax.Array, masks: jax.Array, recipe: AudioRecipe) -> jax.Array:
    """(frames, mel) log-mel and (batch, frames, mel) masks -> (batch, bins, frames) magnitudes."""
    mel = jnp.maximum(jnp.exp(logmel) - recipe.log_offset, 0.0)
    return mel_to_magnitude((masks * mel).transpose(0, 2, 1), recipe)


def griffin_lim(logmel: np.ndarray, masks: np.ndarray, recipe: AudioRecipe, length: int,
                n_iter: int = 32, momentum: float = 0.99, seed: int = 0) -> np.ndarray:
    """(frames, mel) log-mel under (batch, frames, mel) masks -> (batch, length) audio."""
    magnitude = _masked_magnitude(jnp.asarray(logmel, jnp.float32),
                                  jnp.asarray(masks, jnp.float32), recipe)
    return np.asarray(_griffin_lim(magnitude, jax.random.key(seed), length=length, recipe=recipe,
                                   n_iter=n_iter, momentum=momentum))


def from_logmel(logmel: np.ndarray, mask: np.ndarray, recipe: AudioRecipe, length: int,
                n_iter: int = 32) -> Reconstruction:
    """Griffin-Lim of the masked log-mel and of its complement (one batched run)."""
    salient, complement = griffin_lim(logmel, _with_complement(mask), recipe, length, n_iter)
    return Reconstruction(salient, complement, "griffinlim")


def masked_audio(logmel: np.ndarray, masks: np.ndarray, recipe: AudioRecipe,
                 samples: np.ndarray | None = None, length: int | None = None,
                 n_iter: int = 32) -> tuple[np.ndarray, str]:
    """(n, frames, mel) masks -> ((n, samples) audio, method): phase-preserving when the original
    samples are given, else Griffin-Lim of all masks in one batch (`length` defaults to the
    log-mel's)."""
    if samples is not None:
        return phase_preserving_audio(samples, np.asarray(masks, np.float32), recipe), "phase"
    if length is None:
        length = (len(logmel) - 1) * recipe.hop_length
    return griffin_lim(logmel, masks, recipe, length, n_iter), "griffinlim"


def spectral_convergence(samples: np.ndarray, reference: np.ndarray, recipe: AudioRecipe
                         ) -> float:
    """‖ |STFT(samples)| − |STFT(reference)| ‖_F / ‖ |STFT(reference)| ‖_F (0 is perfect)."""
    target = np.abs(audio.stft(reference, recipe))
    return float(np.linalg.norm(np.abs(audio.stft(samples, recipe)) - target)
                 / np.linalg.norm(target))
