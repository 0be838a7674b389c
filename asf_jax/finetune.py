"""Starting a training run from another model's weights (`config.train.init_from`)."""

from __future__ import annotations

import logging

from flax import nnx

from asf_jax.classifier import load_classifier
from asf_jax.models.slowfast import AudioResNet


def load_initial_weights(model: AudioResNet, path: str) -> None:
    """Copy every variable whose name and shape match from the model at `path` (a `.pyth`, an
    asf_jax checkpoint or a workdir); the rest (e.g. a head for other classes, a new LEP head)
    keep their fresh initialisation and are reported."""
    source = nnx.state(load_classifier(path).model, nnx.Any(nnx.Param, nnx.BatchStat))
    source_vars = {tuple(key): value for key, value in nnx.to_flat_state(source)}
    state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
    kept, fresh = 0, []
    for path_key, variable in nnx.to_flat_state(state):
        other = source_vars.get(tuple(path_key))
        if other is not None and other.shape == variable.shape:
            variable.set_value(other.get_value())
            kept += 1
        else:
            fresh.append("/".join(map(str, path_key)))
    if not kept:
        raise ValueError(f"init_from {path}: no variable matches this model's architecture")
    nnx.update(model, state)
    logging.info("Initialised %d variables from %s; re-initialised %d: %s", kept, path,
                 len(fresh), ", ".join(fresh) or "none")
