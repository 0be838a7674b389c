"""Training checkpoints with orbax: the latest few, the best by top-1, and a safe resume.

Each step directory holds the items of a classifier checkpoint (`model`, `meta`, so every
training checkpoint can be labelled with or explained directly) plus `opt_state` and `iterator`
(the input pipeline's position, to resume mid-epoch with the same batches).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from asf_jax.checkpoint import (
    META_ITEM,
    MODEL_ITEM,
    CheckpointMeta,
    model_variables,
    save_args,
    set_model_variables,
)
from asf_jax.steps import ModelGraphs, TrainState, split_variables

OPT_ITEM, ITERATOR_ITEM = "opt_state", "iterator"
ITEMS = (MODEL_ITEM, META_ITEM, OPT_ITEM, ITERATOR_ITEM)


def _abstract(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


class TrainCheckpoints:
    """`workdir/checkpoints` (latest `keep`) and `workdir/best` (highest top-1)."""

    def __init__(self, workdir: str | Path, graphs: ModelGraphs, keep: int = 3):
        workdir = Path(workdir).absolute()
        self.graphs = graphs
        self.latest = ocp.CheckpointManager(
            workdir / "checkpoints", item_names=ITEMS,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))
        self.best = ocp.CheckpointManager(
            workdir / "best", item_names=ITEMS,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1, create=True, best_fn=lambda metrics: metrics["top1"],
                best_mode="max"))

    def _args(self, state: TrainState, meta: CheckpointMeta, iterator_state: dict
              ) -> ocp.args.Composite:
        model = nnx.merge(self.graphs.infer, state.params, state.batch_stats)
        return ocp.args.Composite(**save_args(model_variables(model), meta), **{
            OPT_ITEM: ocp.args.StandardSave(state.opt_state),
            ITERATOR_ITEM: ocp.args.JsonSave(iterator_state)})

    def save(self, state: TrainState, meta: CheckpointMeta, iterator_state: dict) -> None:
        step = int(state.step)
        if step not in self.latest.all_steps():
            self.latest.save(step, args=self._args(state, meta, iterator_state))
        self.latest.wait_until_finished()

    def save_best(self, state: TrainState, meta: CheckpointMeta, iterator_state: dict,
                  top1: float) -> None:
        step = int(state.step)
        if step not in self.best.all_steps():
            self.best.save(step, args=self._args(state, meta, iterator_state),
                           metrics={"top1": top1})
        self.best.wait_until_finished()

    def restore_latest(self, template: TrainState, sharding: jax.sharding.Sharding
                       ) -> tuple[TrainState, dict] | None:
        """The newest readable checkpoint, its arrays placed with `sharding` (every process
        reads its own shards: no array crosses hosts); unreadable ones are reported and skipped."""
        model = nnx.merge(self.graphs.infer, template.params, template.batch_stats)
        target_model = _abstract(model_variables(model), sharding)
        target_opt = _abstract(template.opt_state, sharding)
        for step in sorted(self.latest.all_steps(), reverse=True):
            try:
                restored = self.latest.restore(step, args=ocp.args.Composite(**{
                    MODEL_ITEM: ocp.args.StandardRestore(target_model),
                    OPT_ITEM: ocp.args.StandardRestore(target_opt),
                    ITERATOR_ITEM: ocp.args.JsonRestore()}))
            except Exception as error:  # orbax raises many types for damaged files
                logging.error("Checkpoint step %d in %s is unreadable (%s: %s); trying the "
                              "previous one.", step, self.latest.directory,
                              type(error).__name__, str(error).splitlines()[0][:300])
                continue
            set_model_variables(model, restored[MODEL_ITEM])
            params, batch_stats = split_variables(model)
            logging.info("Resumed from %s step %d.", self.latest.directory, step)
            return (TrainState(step=jnp.asarray(step, template.step.dtype), params=params,
                               batch_stats=batch_stats, opt_state=restored[OPT_ITEM]),
                    restored[ITERATOR_ITEM])
        return None

    def close(self) -> None:
        self.latest.close()
        self.best.close()
