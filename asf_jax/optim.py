"""The reference optimiser in optax: weight decay except on BatchNorm, then SGD with Nesterov.

`add_decayed_weights(wd, mask)` followed by `sgd(lr, momentum, nesterov=True)` is exactly
PyTorch's SGD step (decay added to the gradient, then the momentum buffer); see DESIGN.md.
"""

from __future__ import annotations

from typing import Any

import jax
import optax


def is_batchnorm_path(path: tuple[Any, ...]) -> bool:
    """BatchNorm scale/shift live under a module named `bn` in the model."""
    names = [getattr(k, "key", getattr(k, "name", k)) for k in path]
    return "bn" in names


def decay_mask(params: Any) -> Any:
    """True where weight decay applies: everything but BatchNorm γ/β (the head bias decays)."""
    return jax.tree_util.tree_map_with_path(lambda path, _: not is_batchnorm_path(path), params)


def sgd_with_decay(learning_rate: optax.ScalarOrSchedule, *, momentum: float = 0.9,
                   nesterov: bool = True, weight_decay: float = 1e-4,
                   clip_norm: float | None = None) -> optax.GradientTransformation:
    """Optional global-norm clipping, masked weight decay, then SGD (momentum, Nesterov)."""
    parts = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
    parts += [optax.add_decayed_weights(weight_decay, mask=decay_mask),
              optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)]
    return optax.chain(*parts)
