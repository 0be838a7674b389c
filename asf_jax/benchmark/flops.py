"""FLOP and memory counts of the model: multiply-accumulates counted from the traced jaxpr, and
XLA's own cost and memory analyses of a compiled executable."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asf_jax.models.slowfast import ModelConfig, abstract_model

TRAIN_FLOP_FACTOR = 3  # forward + backward ~ 3 x forward
NUM_MELS = 128


def _jaxpr_macs(jaxpr: jax.extend.core.Jaxpr) -> int:
    """Multiply-accumulates of the convolutions and matmuls in a jaxpr (nested jaxprs included)."""
    macs = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, *spatial) positions
            per_output = int(np.prod([rhs[i] for i in spec[1:]]))
            macs += int(np.prod(eqn.outvars[0].aval.shape)) * per_output
        elif name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            contracted = int(np.prod([lhs[i] for i in lhs_contract]))
            macs += int(np.prod(eqn.outvars[0].aval.shape)) * contracted
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    macs += _jaxpr_macs(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    macs += _jaxpr_macs(sub)
    return macs


def forward_macs_per_clip(config: ModelConfig) -> int:
    """Forward multiply-accumulates of one clip, counted from the traced model (no compile)."""
    model = abstract_model(config)
    model.eval()
    graphdef, state = nnx.split(model)
    logmel = jax.ShapeDtypeStruct((1, config.num_frames, NUM_MELS), jnp.float32)
    forward = jax.make_jaxpr(lambda state, x: nnx.merge(graphdef, state)(x))
    return _jaxpr_macs(forward(state, logmel).jaxpr)


def xla_flops(compiled: Any) -> float | None:
    """FLOPs of one call by XLA's cost analysis, where the backend provides it."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    flops = (analysis or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def xla_memory_bytes(compiled: Any) -> int | None:
    """Arguments + outputs + temporaries of the executable (minus donated aliases), per XLA."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return (stats.argument_size_in_bytes + stats.output_size_in_bytes
            + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


