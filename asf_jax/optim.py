"""The reference optimiser in optax: weight decay except on BatchNorm, then SGD with Nesterov.

`add_decayed_weights(wd, mask)` followed by `sgd(lr, momentum, nesterov=True)` is exactly
PyTorch's SGD step (decay added to the gradient, then the momentum buffer); see DESIGN.md.
For fine-tuning, the backbone (everything but the classifier and LEP heads) can learn at a
fraction of the heads' rate, or not at all (`optax.multi_transform`).
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


HEADS = ("head", "lep_head")  # top-level modules that a fine-tune re-initialises for new classes


def parameter_groups(params: Any) -> Any:
    """"head" for the classifier and LEP heads' parameters, "backbone" for the others."""
    return {name: jax.tree.map(lambda _, group="head" if name in HEADS else "backbone": group,
                               value)
            for name, value in params.items()}


def sgd_with_decay(learning_rate: optax.ScalarOrSchedule, *, momentum: float = 0.9,
                   nesterov: bool = True, weight_decay: float = 1e-4,
                   clip_norm: float | None = None, backbone_lr_multiplier: float = 1.0
                   ) -> optax.GradientTransformation:
    """Optional global-norm clipping, masked weight decay, then SGD (momentum, Nesterov); the
    backbone's learning rate scaled by `backbone_lr_multiplier` (0: the backbone is frozen)."""
    def decay_then_sgd(rate: optax.ScalarOrSchedule) -> list[optax.GradientTransformation]:
        return [optax.add_decayed_weights(weight_decay, mask=decay_mask),
                optax.sgd(rate, momentum=momentum, nesterov=nesterov)]

    parts = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
    if backbone_lr_multiplier == 1.0:
        parts += decay_then_sgd(learning_rate)
    else:
        scaled = (lambda step: backbone_lr_multiplier * learning_rate(step)
                  ) if callable(learning_rate) else backbone_lr_multiplier * learning_rate
        backbone = (optax.set_to_zero() if backbone_lr_multiplier == 0
                    else optax.chain(*decay_then_sgd(scaled)))
        parts.append(optax.multi_transform(
            {"head": optax.chain(*decay_then_sgd(learning_rate)), "backbone": backbone},
            parameter_groups))
    return optax.chain(*parts)
