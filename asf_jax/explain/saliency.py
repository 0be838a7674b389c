"""Which time-frequency cells made the network choose a class: saliency maps.

Saliency is taken of a target score (asf_jax/explain/objectives.py: a class's probability, logit,
log-probability or margin, or the cosine with a label text) w.r.t. the (frames, mel) log-mel, by
`jax.vjp` under `jit`. The gradient is taken w.r.t. each pathway's input (the Slow input is a
gather of the same log-mel, `AudioResNet.pathway_inputs`) and carried back to the log-mel grid
pathway by pathway, so every map also comes split into what reached the network through the Slow
and through the Fast input. A recording longer than one network input is explained window by
window (overlapping clips, stitched by a weighted overlap-add).

Methods (`sign` "auto" gives each its usual sign):
- `grad`: |∂s/∂x| (Simonyan et al., 2014); `sign=positive` keeps where more energy raises s.
- `gradxinput`: ∂s/∂x · (x − floor), against digital silence (the log floor); positive part.
- `smoothgrad`: |mean of gradients at noisy copies| (Smilkov et al., 2017); `smoothgrad2`: the
  mean of their squares (SmoothGrad²), `vargrad`: their variance (VarGrad; Adebayo et al., 2018).
- `ig`: integrated gradients from digital silence (Sundararajan et al., 2017), midpoint rule.
- `gradcam`: ReLU of the channel-weighted activations of stage `layer` (5 or 4) of each pathway,
  upsampled to the input grid (Selvaraju et al., 2017); `guided_gradcam`: Grad-CAM times the
  gradient map (the plain gradient standing in for guided backpropagation). Each pathway's map
  is scaled to a maximum of 1 over the recording, and the map is their mean.
- `mask`: a mask optimised per window (asf_jax/explain/perturbation.py).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asf_jax import audio
from asf_jax.classifier import Classifier
from asf_jax.explain import objectives, perturbation
from asf_jax.explain.objectives import SCORES, Target, TargetArrays
from asf_jax.recipe import AudioRecipe

METHODS = ("grad", "gradxinput", "smoothgrad", "smoothgrad2", "vargrad", "ig", "gradcam",
           "guided_gradcam", "mask")
SIGNS = ("auto", "abs", "positive")
WINDOW_WEIGHTS = ("none", "prob")
GRADIENT_METHODS = ("grad", "gradxinput", "smoothgrad", "smoothgrad2", "vargrad", "ig")
CAM_METHODS = ("gradcam", "guided_gradcam")


@dataclasses.dataclass(frozen=True)
class SaliencyConfig:
    """How saliency is computed; hashable, so it is a static argument of the jitted function."""

    method: str = "grad"
    score: str = "prob"
    sign: str = "auto"
    samples: int = 8  # SmoothGrad-family noisy copies / integrated-gradient steps
    noise: float = 0.1  # SmoothGrad noise std, as a fraction of the window's log-mel range
    window_hop: float = 0.5  # hop between explained windows, as a fraction of one clip
    layer: int = 5  # Grad-CAM stage: 5 (last) or 4
    window_weight: str = "none"  # "prob": each window's map times its target probability
    # (a text target's cosine)
    perturbation: perturbation.PerturbationConfig = perturbation.PerturbationConfig()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown saliency method {self.method!r}; expected one of {METHODS}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; expected one of {SCORES}")
        if self.sign not in SIGNS:
            raise ValueError(f"unknown sign {self.sign!r}; expected one of {SIGNS}")
        if self.layer not in (4, 5):
            raise ValueError(f"Grad-CAM layer must be 4 or 5, got {self.layer}")
        if self.window_weight not in WINDOW_WEIGHTS:
            raise ValueError(f"window_weight must be one of {WINDOW_WEIGHTS}")
        if not 0 < self.window_hop <= 1:
            raise ValueError(f"window_hop must be in (0, 1], got {self.window_hop}")

    @classmethod
    def parse(cls, spec: str, base: SaliencyConfig | None = None) -> SaliencyConfig:
        """`method[:key=value,...]`, e.g. `grad:score=logit,sign=positive` or `mask:steps=20`;
        keys are fields of this class or of PerturbationConfig; the rest come from `base`."""
        base = base or cls()
        method, _, options = spec.partition(":")
        fields: dict[str, Any] = {"method": method.strip()}
        mask_fields: dict[str, Any] = {}
        for option in filter(None, (o.strip() for o in options.split(","))):
            key, sep, value = option.partition("=")
            key = key.strip()
            if not sep:
                raise ValueError(f"{spec!r}: expected key=value, got {option!r}")
            own = {f.name: f for f in dataclasses.fields(cls)}
            inner = {f.name: f for f in dataclasses.fields(perturbation.PerturbationConfig)}
            if key in own and key != "perturbation":
                fields[key] = _convert(getattr(base, key), value)
            elif key in inner:
                mask_fields[key] = _convert(getattr(base.perturbation, key), value)
            else:
                raise ValueError(f"{spec!r}: unknown option {key!r}")
        fields["perturbation"] = dataclasses.replace(base.perturbation, **mask_fields)
        return dataclasses.replace(base, **fields)

    @property
    def name(self) -> str:
        """The spec `parse` reads back, naming only what differs from the defaults."""
        default = SaliencyConfig(self.method)
        options = [f"{f.name}={_format(getattr(self, f.name))}"
                   for f in dataclasses.fields(self) if f.name not in ("method", "perturbation")
                   and getattr(self, f.name) != getattr(default, f.name)]
        if self.method == "mask":
            options += [f"{f.name}={_format(getattr(self.perturbation, f.name))}"
                        for f in dataclasses.fields(self.perturbation)
                        if getattr(self.perturbation, f.name)
                        != getattr(default.perturbation, f.name)]
        return self.method + (":" + ",".join(options) if options else "")


def _convert(example: Any, text: str) -> Any:
    """`text` as the type of `example` (a tuple reads `a/b`)."""
    if isinstance(example, tuple):
        return tuple(type(e)(v) for e, v in zip(example, text.split("/"), strict=True))
    return type(example)(text)


def _format(value: Any) -> str:
    return "/".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}" if isinstance(
        value, float) else str(value)


# The explainer's default, chosen by the localisation / faithfulness / sanity benchmark
# (asf_jax/explain/benchmark.py; README "Explain a prediction"). Specs name what differs from the
# plain `SaliencyConfig()` (grad of the probability), so they keep their meaning.
DEFAULT_SPEC = "mask:window_weight=prob,area=2"


@dataclasses.dataclass
class Saliency:
    """Saliency of one recording on its whole-signal log-mel grid."""

    logmel: np.ndarray  # (frames, mel)
    saliency: np.ndarray  # (frames, mel), >= 0
    targets: tuple[int, ...]  # explained classes (their scores are summed); () for a text target
    probabilities: np.ndarray  # (classes,) mean softmax over the explained windows
    window_starts: np.ndarray  # (windows,) first frame of each explained window
    target: Target | None = None  # what was explained (classes, text, contrast)
    pathways: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # (frames, mel)

    @property
    def pathway_share(self) -> dict[str, float]:
        """Fraction of the saliency that came through each pathway's input."""
        mass = {name: float(values.sum()) for name, values in self.pathways.items()}
        total = sum(mass.values())
        return {name: value / total if total > 0 else 0.0 for name, value in mass.items()}


def pathway_names(arch: str) -> tuple[str, ...]:
    return ("slow", "fast") if arch == "slowfast" else (arch,)


# ------------------------------------------------------------------------------------------------
# Saliency of one batch of windows.
# ------------------------------------------------------------------------------------------------


def _signed(values: jax.Array, sign: str) -> jax.Array:
    return jnp.abs(values) if sign == "abs" else jax.nn.relu(values)


def _on_logmel_grid(grads: list[jax.Array], to_logmel: Any) -> jax.Array:
    """Per-pathway input gradients -> (pathways, batch, frames, mel), each carried back through
    the pathway's own gather (the transpose of `pathway_inputs`) alone."""
    zeros = [jnp.zeros_like(g) for g in grads]
    return jnp.stack([to_logmel(zeros[:i] + [g] + zeros[i + 1:])[0] for i, g in enumerate(grads)])


def _tapped(model: nnx.Module, layer: int):
    """(pathway inputs, zeros at stage `layer`'s outputs) -> (outputs, those activations): one
    backward pass then gives the gradient w.r.t. the inputs and w.r.t. the activations."""
    def forward(inputs: list[jax.Array], deltas: list[jax.Array]):
        activations = [a + d for a, d in zip(model.pathway_features(inputs, range(layer - 1)),
                                             deltas, strict=True)]
        return model.classify(model.pathway_features(activations, range(layer - 1, 4))), activations
    return forward


def _gradcam(activations: list[jax.Array], grads: list[jax.Array], shape: tuple[int, ...]
             ) -> jax.Array:
    """(pathways, batch, frames, mel): each pathway's Grad-CAM, linearly upsampled to `shape`.

    Not normalised here: `explain_logmel` scales each pathway's map by its maximum over the
    whole recording (not per window: a window without the target keeps its low values)."""
    maps = []
    for activation, grad in zip(activations, grads, strict=True):
        weights = grad.mean(axis=(1, 2), keepdims=True)  # (batch, 1, 1, channels)
        cam = jax.nn.relu((weights * activation).sum(axis=-1))  # (batch, time, freq)
        maps.append(jax.image.resize(cam, shape, "linear"))
    return jnp.stack(maps)


def _gradient_maps(model: nnx.Module, x: jax.Array, first: jax.Array, arrays: TargetArrays,
                   key: jax.Array, floor: float, config: SaliencyConfig, to_logmel: Any
                   ) -> tuple[jax.Array, jax.Array]:
    """(map (batch, frames, mel), per-pathway maps (pathways, batch, frames, mel)) of a gradient
    method; `first` is the per-pathway gradient at `x` itself (pathways, batch, frames, mel)."""
    def gradient_at(point: jax.Array) -> jax.Array:
        inputs = model.pathway_inputs(point)
        grads = jax.grad(lambda xs: objectives.target_score(
            model.classify(model.pathway_features(xs)), arrays, config.score).sum())(inputs)
        return _on_logmel_grid(grads, to_logmel)

    if config.method in ("grad", "gradxinput"):
        samples = first[None]
    elif config.method == "ig":  # midpoints of the straight path from digital silence
        alphas = (jnp.arange(config.samples) + 0.5) / config.samples
        samples = jax.lax.map(lambda a: gradient_at(floor + a * (x - floor)), alphas)
    else:
        spread = config.noise * (x.max(axis=(1, 2)) - x.min(axis=(1, 2)))[:, None, None]
        noise = jax.random.normal(key, (config.samples,) + x.shape)
        samples = jax.lax.map(lambda n: gradient_at(x + spread * n), noise)
    combined = samples.sum(axis=1)  # (samples, batch, frames, mel): the gradient w.r.t. x
    if config.method == "smoothgrad2":
        return jnp.square(combined).mean(axis=0), jnp.square(samples).mean(axis=0)
    if config.method == "vargrad":
        return combined.var(axis=0), samples.var(axis=0)
    total, pathways = combined.mean(axis=0), samples.mean(axis=0)
    if config.method in ("gradxinput", "ig"):
        total, pathways = total * (x - floor), pathways * (x - floor)
    sign = config.sign if config.sign != "auto" else (
        "positive" if config.method in ("gradxinput", "ig") else "abs")
    return _signed(total, sign), _signed(pathways, sign)


@functools.partial(jax.jit, static_argnames=("graphdef", "config", "top_k", "log_offset"))
def window_saliency(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array,
                    arrays: TargetArrays, key: jax.Array, log_offset: float,
                    config: SaliencyConfig, top_k: int = 1
                    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(batch, frames, mel) log-mel windows -> saliency (batch, frames, mel) >= 0, per-pathway
    maps (pathways, batch, frames, mel), the mean probabilities (classes,) over the windows, and
    the explained class weights (classes,) (zeros for a text target).

    Without `arrays.classes` (and no text) the `top_k` most probable classes are explained,
    chosen from the same forward pass the gradient reuses: one forward and one backward pass per
    window for `grad`, `gradxinput` and the Grad-CAMs.
    """
    model = nnx.merge(graphdef, state)
    floor = float(np.log(log_offset))
    inputs, to_logmel = jax.vjp(model.pathway_inputs, x)
    forward = _tapped(model, config.layer)
    shapes = jax.eval_shape(lambda i: model.pathway_features(i, range(config.layer - 1)), inputs)
    deltas = [jnp.zeros(s.shape, s.dtype) for s in shapes]
    outputs, backward, activations = jax.vjp(forward, inputs, deltas, has_aux=True)
    probabilities = jax.nn.softmax(outputs.logits, axis=-1).mean(axis=0)
    arrays = objectives.with_top_classes(arrays, probabilities, top_k)
    cotangent = jax.grad(lambda o: objectives.target_score(o, arrays, config.score).sum())(outputs)
    input_grads, activation_grads = backward(cotangent)
    first = _on_logmel_grid(input_grads, to_logmel)
    if config.method in GRADIENT_METHODS:
        total, pathways = _gradient_maps(model, x, first, arrays, key, floor, config, to_logmel)
    elif config.method in ("gradcam", "guided_gradcam"):
        pathways = _gradcam(activations, activation_grads, x.shape)
        if config.method == "guided_gradcam":
            sign = "abs" if config.sign == "auto" else config.sign
            pathways = pathways * _signed(first.sum(axis=0), sign)
        total = pathways.mean(axis=0)  # replaced by the normalised mean after stitching
    else:
        def score(v: jax.Array) -> jax.Array:
            return objectives.target_score(model(v), arrays, config.score)
        start = None
        if config.perturbation.prior == "gradcam":
            cams = _gradcam(activations, activation_grads, x.shape)  # (pathways, batch, ...)
            start = (cams / jnp.maximum(cams.max(axis=(1, 2, 3), keepdims=True), 1e-30)).mean(0)
        total = perturbation.optimise_mask(score, x, config.perturbation, log_offset, start)
        # Each cell's mask value is divided between the pathways as their gradients are there
        # (evenly where neither has one).
        magnitude = jnp.abs(first)
        summed = magnitude.sum(axis=0)
        pathways = total * jnp.where(summed > 0, magnitude / jnp.where(summed > 0, summed, 1.0),
                                     1.0 / len(magnitude))
    if config.window_weight == "prob":
        weight = objectives.presence(outputs, arrays)[:, None, None]  # (batch, 1, 1)
        total, pathways = total * weight, pathways * weight
    classes = arrays.classes if arrays.classes is not None else jnp.zeros_like(probabilities)
    return total, pathways, probabilities, classes


# ------------------------------------------------------------------------------------------------
# Whole recordings: windows and stitching.
# ------------------------------------------------------------------------------------------------


def windows(logmel: np.ndarray, starts: np.ndarray, window: int, recipe: AudioRecipe
            ) -> np.ndarray:
    """(frames, mel) -> (windows, window, mel); a short recording is filled up as the recipe's
    `short_clips` says (edge padded in the reference)."""
    padded = audio.pad_frames(logmel, window, recipe)
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
                    target: str | int | None, top_k: int = 1) -> tuple[int, ...]:
    """A class index or name (case-insensitive), else the `top_k` most probable classes."""
    if target is None:
        return tuple(int(i) for i in np.argsort(-probabilities, kind="stable")[:top_k])
    return (objectives.resolve_class(class_names, target),)


def as_target(class_names: list[str], target: Target | str | int | None) -> Target | None:
    if target is None or isinstance(target, Target):
        return target
    return Target((objectives.resolve_class(class_names, target),))


def explain_logmel(classifier: Classifier, logmel: np.ndarray,
                   target: Target | str | int | None = None, top_k: int = 1,
                   config: SaliencyConfig | None = None, seed: int = 0) -> Saliency:
    """Saliency of a whole recording's (frames, mel) log-mel for a target (a Target, a class name
    or index) or, without one, the `top_k` predicted classes; `config` defaults to
    `DEFAULT_SPEC`."""
    config = config or SaliencyConfig.parse(DEFAULT_SPEC)
    window = classifier.config.num_frames
    starts = audio.window_starts(len(logmel), window, round(window * config.window_hop))
    x = windows(logmel, starts, window, classifier.recipe)  # (windows, window, mel)
    target = as_target(classifier.class_names, target)
    top_k = min(top_k, len(classifier.class_names))
    if target is None and len(x) > classifier.max_batch:  # every chunk's scores first
        target = Target(resolve_targets(classifier.class_names,
                                        classifier.probabilities(x).mean(axis=0), None, top_k))
    arrays = objectives.target_arrays(classifier, target)
    maps, pathway_maps, chunk_probabilities = [], [], []
    for start in range(0, len(x), classifier.max_batch):
        chunk = x[start:start + classifier.max_batch]
        saliency, pathways, probabilities, classes = window_saliency(
            classifier.graphdef, classifier.state, jnp.asarray(chunk), arrays,
            jax.random.fold_in(jax.random.key(seed), start), classifier.recipe.log_offset, config,
            top_k)
        maps.append(np.asarray(saliency))
        pathway_maps.append(np.asarray(pathways))
        chunk_probabilities.append(np.asarray(probabilities) * len(chunk))
        if target is None:
            chosen = np.flatnonzero(np.asarray(classes))
            probabilities = np.asarray(probabilities)
            target = Target(tuple(int(i) for i in chosen[np.argsort(-probabilities[chosen],
                                                                    kind="stable")]))
            arrays = objectives.target_arrays(classifier, target)
    pathway_maps = np.concatenate(pathway_maps, axis=1)  # (pathways, windows, window, mel)
    pathways = {name: stitch(values, starts, len(logmel))
                for name, values in zip(pathway_names(classifier.config.arch), pathway_maps,
                                        strict=True)}
    if config.method in CAM_METHODS:  # each pathway max-normalised; the map is their mean
        pathways = {name: values / max(float(values.max()), 1e-30) / len(pathways)
                    for name, values in pathways.items()}
        saliency = sum(pathways.values())
    else:
        saliency = stitch(np.concatenate(maps), starts, len(logmel))
    return Saliency(np.asarray(logmel, np.float32), saliency, target.classes,
                    (np.sum(chunk_probabilities, axis=0) / len(x)).astype(np.float32), starts,
                    target, pathways)


def explain_audio(classifier: Classifier, samples: np.ndarray,
                  target: Target | str | int | None = None, top_k: int = 1,
                  config: SaliencyConfig | None = None, seed: int = 0) -> Saliency:
    """`explain_logmel` of the log-mel of mono samples at the recipe's rate."""
    return explain_logmel(classifier, audio.logmel(samples, classifier.recipe), target, top_k,
                          config, seed)
