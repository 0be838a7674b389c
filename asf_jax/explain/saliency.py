"""Which time-frequency cells made the network choose a class: saliency maps.

Saliency is taken of a class score (softmax probability or logit of the predicted class, a named
class, or the sum over the top k) w.r.t. the (frames, mel) log-mel by `jax.grad` under `jit`; the
Slow input is a gather of the same spectrogram, so one gradient covers both pathways. A recording
longer than one network input is explained window by window (overlapping clips, stitched by a
weighted overlap-add).

Attribution conventions: `grad` and `smoothgrad` give |gradient|; `gradxinput` and `ig` compare with
digital silence (the log floor `log(log_offset)`) and keep the positive evidence; `gradcam` is the
ReLU of the channel-weighted stage-5 activations, upsampled to the input grid.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asf_jax import audio
from asf_jax.classifier import Classifier

METHODS = ("grad", "gradxinput", "smoothgrad", "ig", "gradcam")
SCORES = ("prob", "logit")


@dataclasses.dataclass(frozen=True)
class SaliencyConfig:
    """How saliency is computed; hashable, so it is a static argument of the jitted function."""

    method: str = "grad"
    score: str = "prob"
    samples: int = 8  # SmoothGrad noisy copies / integrated-gradient steps
    noise: float = 0.1  # SmoothGrad noise std, as a fraction of the window's log-mel range
    window_hop: float = 0.5  # hop between explained windows, as a fraction of one clip

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown saliency method {self.method!r}; expected one of {METHODS}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; expected one of {SCORES}")


@dataclasses.dataclass
class Saliency:
    """Saliency of one recording on its whole-signal log-mel grid."""

    logmel: np.ndarray  # (frames, mel)
    saliency: np.ndarray  # (frames, mel), >= 0
    targets: tuple[int, ...]  # explained classes (their scores are summed)
    probabilities: np.ndarray  # (classes,) mean softmax over the explained windows
    window_starts: np.ndarray  # (windows,) first frame of each explained window


# ------------------------------------------------------------------------------------------------
# Saliency of one batch of windows.
# ------------------------------------------------------------------------------------------------


def _target_score(logits: jax.Array, targets: jax.Array, score: str) -> jax.Array:
    """(batch, classes) logits -> (batch,) summed score of the target classes."""
    values = jax.nn.softmax(logits, axis=-1) if score == "prob" else logits
    return values[:, targets].sum(axis=-1)


def _score_cotangent(logits: jax.Array, targets: jax.Array, score: str) -> jax.Array:
    """d(summed target score)/d(logits): what a vector-Jacobian product of the logits takes."""
    return jax.grad(lambda v: _target_score(v, targets, score).sum())(logits)


@functools.partial(jax.jit, static_argnames=("graphdef", "config", "top_k"))
def window_saliency(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array,
                    targets: jax.Array | None, key: jax.Array, floor: float,
                    config: SaliencyConfig, top_k: int = 1
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(batch, frames, mel) log-mel windows -> (saliency (batch, frames, mel) >= 0, the mean
    probabilities (classes,) over the windows, targets (k,)).

    With `targets=None` the `top_k` most probable classes are explained, chosen from the same
    forward pass the gradient reuses (`jax.vjp`): one forward and one backward per window.
    """
    model = nnx.merge(graphdef, state)
    if config.method == "gradcam":  # the gradient w.r.t. each pathway's stage-5 features
        features = model.features(x)  # per pathway (batch, time, freq, channels)
        logits, backward = jax.vjp(lambda f: model.classify(f).logits, features)
    else:
        logits, backward = jax.vjp(lambda v: model(v).logits, x)
    probabilities = jax.nn.softmax(logits, axis=-1).mean(axis=0)
    if targets is None:
        targets = jax.lax.top_k(probabilities, top_k)[1]
    cotangent = _score_cotangent(logits, targets, config.score)
    if config.method == "gradcam":
        return _gradcam(features, backward(cotangent)[0], x.shape), probabilities, targets
    if config.method in ("grad", "gradxinput"):
        grad = backward(cotangent)[0]
        saliency = jnp.abs(grad) if config.method == "grad" else jax.nn.relu(grad * (x - floor))
        return saliency, probabilities, targets
    grad = jax.grad(lambda v: _target_score(model(v).logits, targets, config.score).sum())
    if config.method == "smoothgrad":
        spread = config.noise * (x.max(axis=(1, 2)) - x.min(axis=(1, 2)))[:, None, None]
        noise = jax.random.normal(key, (config.samples,) + x.shape)
        saliency = jnp.abs(jax.lax.map(lambda n: grad(x + spread * n), noise).mean(axis=0))
        return saliency, probabilities, targets
    alphas = (jnp.arange(config.samples) + 0.5) / config.samples  # integrated gradients, midpoints
    path_grads = jax.lax.map(lambda a: grad(floor + a * (x - floor)), alphas)
    return jax.nn.relu(path_grads.mean(axis=0) * (x - floor)), probabilities, targets


def _gradcam(features: tuple[jax.Array, ...], grads: tuple[jax.Array, ...],
             shape: tuple[int, ...]) -> jax.Array:
    """Grad-CAM per pathway, linearly upsampled to `shape` (batch, frames, mel), max-normalised,
    averaged over the pathways."""
    maps = []
    for activation, grad in zip(features, grads, strict=True):
        weights = grad.mean(axis=(1, 2), keepdims=True)  # (batch, 1, 1, channels)
        cam = jax.nn.relu((weights * activation).sum(axis=-1))  # (batch, time, freq)
        cam = jax.image.resize(cam, shape, "linear")
        maps.append(cam / (cam.max(axis=(1, 2), keepdims=True) + 1e-12))
    return sum(maps) / len(maps)


# ------------------------------------------------------------------------------------------------
# Whole recordings: windows and stitching.
# ------------------------------------------------------------------------------------------------


def windows(logmel: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(frames, mel) -> (windows, window, mel); a short recording is edge padded (reference)."""
    padded = audio.pad_frames(logmel, window)
    return np.stack([padded[s:s + window] for s in starts])


def stitch(values: np.ndarray, starts: np.ndarray, num_frames: int) -> np.ndarray:
    """Overlap-add (windows, window, mel) maps, Hann-weighted (positive at the ends), normalised."""
    window = values.shape[1]
    weight = np.hanning(window + 2)[1:-1]  # (window,)
    total = np.zeros((max(num_frames, window), values.shape[2]))
    norm = np.zeros(len(total))
    for start, value in zip(starts, values, strict=True):
        total[start:start + window] += weight[:, None] * value
        norm[start:start + window] += weight
    return (total / norm[:, None])[:num_frames].astype(np.float32)


def resolve_targets(class_names: list[str], probabilities: np.ndarray | None,
                    target: str | int | None,
                    top_k: int = 1) -> tuple[int, ...]:
    """A class index or name (case-insensitive), else the `top_k` most probable classes."""
    if target is None:
        return tuple(int(i) for i in np.argsort(-probabilities, kind="stable")[:top_k])
    if isinstance(target, int) or re.fullmatch(r"\d+", str(target)):
        index = int(target)
        if not 0 <= index < len(class_names):
            raise ValueError(f"class index {index} out of range 0..{len(class_names) - 1}")
        return (index,)
    lowered = [name.lower() for name in class_names]
    if target.lower() not in lowered:
        close = [n for n in class_names if target.lower() in n.lower()][:5]
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"unknown class {target!r}{hint}")
    return (lowered.index(target.lower()),)


def explain_logmel(classifier: Classifier, logmel: np.ndarray, target: str | int | None = None,
                   top_k: int = 1, config: SaliencyConfig = SaliencyConfig(), seed: int = 0
                   ) -> Saliency:
    """Saliency of a whole recording's (frames, mel) log-mel for the chosen (or predicted) class."""
    window = classifier.config.num_frames
    starts = audio.window_starts(len(logmel), window, round(window * config.window_hop))
    x = windows(logmel, starts, window)  # (windows, window, mel)
    targets = None
    if target is not None:
        targets = resolve_targets(classifier.class_names, None, target)
    elif len(x) > classifier.max_batch:  # the top classes need every chunk's scores first
        targets = resolve_targets(classifier.class_names,
                                  classifier.probabilities(x).mean(axis=0), None, top_k)
    floor = float(np.log(classifier.recipe.log_offset))
    values, chunk_probabilities = [], []
    for start in range(0, len(x), classifier.max_batch):
        chunk = x[start:start + classifier.max_batch]
        saliency, probabilities, chosen = window_saliency(
            classifier.graphdef, classifier.state, jnp.asarray(chunk),
            None if targets is None else jnp.asarray(targets),
            jax.random.fold_in(jax.random.key(seed), start), floor, config,
            min(top_k, len(classifier.class_names)))
        values.append(np.asarray(saliency))
        chunk_probabilities.append(np.asarray(probabilities) * len(chunk))
        targets = targets or tuple(int(t) for t in np.asarray(chosen))
    saliency = stitch(np.concatenate(values), starts, len(logmel))
    return Saliency(np.asarray(logmel, np.float32), saliency, targets,
                    (np.sum(chunk_probabilities, axis=0) / len(x)).astype(np.float32), starts)


def explain_audio(classifier: Classifier, samples: np.ndarray, target: str | int | None = None,
                  top_k: int = 1, config: SaliencyConfig = SaliencyConfig(), seed: int = 0
                  ) -> Saliency:
    """`explain_logmel` of the log-mel of mono samples at the recipe's rate."""
    return explain_logmel(classifier, audio.logmel(samples, classifier.recipe), target, top_k,
                          config, seed)
