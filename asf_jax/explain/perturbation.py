"""An optimised mask per window: the smallest smooth region whose sound alone keeps the score.

Fong & Vedaldi's meaningful perturbation ("Interpretable explanations of black boxes by
meaningful perturbation", ICCV 2017) with L-MAC's objective (Paissan et al., ICML 2024) but no
trained decoder: per window, a low-resolution mask m in [0, 1] (a sigmoid of free parameters,
upsampled linearly to the log-mel grid) minimises

    -s(keep(m)) + deletion · s(keep(1 - m)) + area · mean(m) + smoothness · TV(m)

by Adam, under `jit`, for all windows of a batch at once, from a constant mask or from the
window's Grad-CAM map (`prior`). `s` is the explained score
(asf_jax/explain/objectives.py) and `keep(m)` the input with only the masked part left: by default
the mel magnitude times m (`floor`: what the salient audio the user hears contains; removed cells
fall to digital silence), or the cells blended with the window's mean log-mel (`mean`).
TV is the mean squared difference of neighbouring mask parameters along time and frequency.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

OPERATORS = ("floor", "mean")
PRIORS = ("none", "gradcam")


@dataclasses.dataclass(frozen=True)
class PerturbationConfig:
    """Settings of the mask optimisation (hashable: part of a static jit argument)."""

    steps: int = 40
    learning_rate: float = 0.2
    area: float = 0.5  # weight of the mean mask value
    smoothness: float = 0.5  # weight of the total variation of the mask parameters
    deletion: float = 1.0  # weight of the score of the removed part (L-MAC's masked-out term)
    cell: tuple[int, int] = (8, 8)  # log-mel frames x mel bands per mask parameter
    init: float = 0.5  # the mask's starting value everywhere (without a prior)
    prior: str = "none"  # "gradcam": start from the window's Grad-CAM map instead
    operator: str = "floor"

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise ValueError(f"mask prior must be one of {PRIORS}, got {self.prior!r}")
        if self.operator not in OPERATORS:
            raise ValueError(f"mask operator must be one of {OPERATORS}, got {self.operator!r}")
        if self.steps < 1 or min(self.cell) < 1 or not 0 < self.init < 1:
            raise ValueError("mask optimisation needs steps >= 1, cells of >= 1 x 1 and a "
                             "starting value in (0, 1)")


def keep(x: jax.Array, mask: jax.Array, operator: str, log_offset: float) -> jax.Array:
    """(batch, frames, mel) log-mel with only the masked part kept (`mask` in [0, 1]): the mel
    magnitude scaled by the mask (`floor`) or the log-mel blended with each item's mean."""
    if operator == "floor":
        return jnp.log(mask * jnp.maximum(jnp.exp(x) - log_offset, 0.0) + log_offset)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return mask * x + (1 - mask) * mean


def total_variation(values: jax.Array) -> jax.Array:
    """(batch,) mean squared difference of neighbours along both axes of (batch, a, b) values."""
    return (jnp.square(jnp.diff(values, axis=1)).mean(axis=(1, 2))
            + jnp.square(jnp.diff(values, axis=2)).mean(axis=(1, 2)))


def optimise_mask(score: Callable[[jax.Array], jax.Array], x: jax.Array,
                  config: PerturbationConfig, log_offset: float,
                  start: jax.Array | None = None) -> jax.Array:
    """(batch, frames, mel) log-mel windows -> (batch, frames, mel) masks in [0, 1].

    `score` maps a batch of log-mel windows to their (batch,) explained scores; `start`, a
    (batch, frames, mel) map in [0, 1], is where the mask starts (default `config.init`).
    """
    batch, frames, mels = x.shape
    shape = (batch, -(-frames // config.cell[0]), -(-mels // config.cell[1]))
    if start is None:
        start = jnp.full(shape, config.init)
    else:
        start = jnp.clip(jax.image.resize(start, shape, "linear"), 0.02, 0.98)

    def upsample(params: jax.Array) -> jax.Array:
        return jax.image.resize(jax.nn.sigmoid(params), x.shape, "linear")

    def loss(params: jax.Array) -> jax.Array:
        mask = upsample(params)
        both = jnp.concatenate([keep(x, mask, config.operator, log_offset),
                                keep(x, 1 - mask, config.operator, log_offset)])
        kept, removed = jnp.split(score(both), 2)
        low = jax.nn.sigmoid(params)
        return (-kept + config.deletion * removed + config.area * low.mean(axis=(1, 2))
                + config.smoothness * total_variation(low)).sum()

    optimiser = optax.adam(config.learning_rate)

    def step(_, carry):
        params, state = carry
        updates, state = optimiser.update(jax.grad(loss)(params), state)
        return optax.apply_updates(params, updates), state

    params = jnp.log(start / (1 - start))
    params, _ = jax.lax.fori_loop(0, config.steps, step, (params, optimiser.init(params)))
    return upsample(params)
