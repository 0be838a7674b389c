"""Pure, jittable functions of the training state: train step, evaluation, precise BatchNorm.

The model is split once into graph definitions (training, inference, statistics re-estimation)
and plain nested dicts of parameters and BatchNorm statistics, so the state is an ordinary pytree
that jit can donate, shard and checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from asf_jax.lep import LEPMeta, lep_loss
from asf_jax.models.layers import BatchNorm
from asf_jax.models.slowfast import ModelOutputs
from asf_jax.optim import HEADS

Params = dict[str, Any]


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Params
    batch_stats: Params
    opt_state: optax.OptState


@flax.struct.dataclass
class ModelGraphs:
    """The model's structure in each mode; the variables live in TrainState."""

    train: nnx.GraphDef = flax.struct.field(pytree_node=False)
    infer: nnx.GraphDef = flax.struct.field(pytree_node=False)
    statistics: nnx.GraphDef = flax.struct.field(pytree_node=False)

    @classmethod
    def of(cls, model: nnx.Module, freeze_batch_stats: bool = False) -> ModelGraphs:
        """`freeze_batch_stats`: training normalises with (and keeps) the running statistics."""
        model.train()
        if freeze_batch_stats:
            model.set_attributes(BatchNorm, use_running_average=True)
        train = nnx.graphdef(model)
        model.eval()
        infer = nnx.graphdef(model)
        # Precise BN: batch statistics replace the running ones (momentum 1), no dropout.
        model.train()
        model.set_attributes(nnx.Dropout, deterministic=True)
        model.set_attributes(BatchNorm, momentum=1.0)
        statistics = nnx.graphdef(model)
        model.set_attributes(BatchNorm, momentum=0.1)
        model.eval()
        return cls(train, infer, statistics)


def split_variables(model: nnx.Module) -> tuple[Params, Params]:
    """(parameters, BatchNorm statistics) of a model as nested dicts of arrays."""
    return (nnx.to_pure_dict(nnx.state(model, nnx.Param)),
            nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))


# An objective maps (model outputs, labels, step) to (loss, extra metrics).
Objective = Callable[[ModelOutputs, jax.Array, jax.Array],
                     tuple[jax.Array, dict[str, jax.Array]]]


def cross_entropy_objective(outputs: ModelOutputs, labels: jax.Array, step: jax.Array
                            ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The reference's mean cross-entropy (the baseline)."""
    return optax.softmax_cross_entropy_with_integer_labels(outputs.logits, labels).mean(), {}


def lep_objective(lep: LEPMeta, trained: np.ndarray | None = None, warmup_steps: int = 0
                  ) -> Objective:
    """`(1 − λ)·CE + λ·embedding term` against the frozen table, a jit constant; λ ramps up
    linearly from 0 over `warmup_steps` (0: constant). `trained` (classes,) bool marks the
    classes a contrastive term may compare with (held-out ones excluded)."""
    table = jnp.asarray(lep.embeddings.table, jnp.float32)

    def objective(outputs: ModelOutputs, labels: jax.Array, step: jax.Array
                  ) -> tuple[jax.Array, dict[str, jax.Array]]:
        lam = lep.lam * (jnp.minimum(1.0, step / warmup_steps) if warmup_steps else 1.0)
        loss, terms = lep_loss(outputs.logits, outputs.projection, labels, table, lam, lep.loss,
                               lep.temperature, trained)
        return loss, terms | ({"lam": lam} if warmup_steps else {})

    return objective


@dataclasses.dataclass(frozen=True)
class Mixup:
    """mixup (Zhang et al., 2018) of whole batches: with probability `rate` a batch becomes
    λ·x + (1 − λ)·x[perm] with λ ~ Beta(α, α) (the larger of λ, 1 − λ), and the loss the same
    mix of the two label sets' losses."""

    rate: float
    alpha: float


def mix_batch(key: jax.Array, logmel: jax.Array, mixup: Mixup
              ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(mixed log-mels, λ, permutation): λ = 1 leaves the batch as it is."""
    lam_key, use_key, perm_key = jax.random.split(key, 3)
    lam = jax.random.beta(lam_key, mixup.alpha, mixup.alpha)
    lam = jnp.where(jax.random.uniform(use_key) < mixup.rate, jnp.maximum(lam, 1 - lam), 1.0)
    permutation = jax.random.permutation(perm_key, logmel.shape[0])
    return lam * logmel + (1 - lam) * logmel[permutation], lam, permutation


def make_train_step(graphs: ModelGraphs, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, base_key: jax.Array, *,
                    objective: Objective = cross_entropy_objective,
                    freeze_backbone: bool = False, mixup: Mixup | None = None) -> Callable:
    """One SGD step on a (globally sharded) batch; BatchNorm statistics over the global batch.

    `freeze_backbone`: only the classifier and LEP heads learn (no gradient flows into the rest,
    whose parameters stay bit-identical). The metrics are the loss, norms, accuracy and learning
    rate, plus what `objective` reports.
    """

    def train_step(state: TrainState, batch: dict[str, jax.Array]
                   ) -> tuple[TrainState, dict[str, jax.Array]]:
        dropout_key = jax.random.fold_in(base_key, state.step)
        logmel, labels = batch["logmel"], batch["label"]
        lam, permutation = 1.0, None
        if mixup is not None:
            logmel, lam, permutation = mix_batch(jax.random.fold_in(dropout_key, 1), logmel,
                                                 mixup)

        def loss_fn(params: Params) -> tuple[jax.Array, tuple[Params, jax.Array, dict]]:
            if freeze_backbone:
                params = {name: value if name in HEADS else jax.lax.stop_gradient(value)
                          for name, value in params.items()}
            model = nnx.merge(graphs.train, params, state.batch_stats)
            outputs = model(logmel, nnx.Rngs(dropout=dropout_key))
            new_stats = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
            loss, terms = objective(outputs, labels, state.step)
            if permutation is not None:
                other_loss, other_terms = objective(outputs, labels[permutation], state.step)
                loss = lam * loss + (1 - lam) * other_loss
                terms = jax.tree.map(lambda a, b: lam * a + (1 - lam) * b, terms, other_terms)
            return loss, (new_stats, outputs.logits, terms)

        (loss, (batch_stats, logits, terms)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if freeze_backbone:
            params = {name: value if name in HEADS else state.params[name]
                      for name, value in params.items()}
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
                   "param_norm": optax.tree.norm(params),
                   "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
                   "learning_rate": schedule(state.step)} | terms
        return new_state, metrics

    return train_step


def make_eval_step(graph: nnx.GraphDef) -> Callable:
    """Softmax summed over each clip's views: (batch, views, frames, mel) -> (batch, classes).

    An LEP model also gives `projected`, its projection ê averaged over the views (batch, D).
    """

    def eval_step(params: Params, batch_stats: Params, batch: dict[str, jax.Array]
                  ) -> dict[str, jax.Array]:
        model = nnx.merge(graph, params, batch_stats)
        views = batch["logmel"]
        logits, projected = model(views.reshape((-1,) + views.shape[2:]))
        probs = jax.nn.softmax(logits, axis=-1).reshape(views.shape[:2] + logits.shape[-1:])
        out = {"scores": probs.sum(axis=1), "label": batch["label"], "mask": batch["mask"]}
        if projected is not None:
            out["projected"] = projected.reshape(views.shape[:2] + projected.shape[-1:]).mean(1)
        return out

    return eval_step


def make_statistics_step(graphs: ModelGraphs) -> Callable:
    """The BatchNorm statistics of one training batch (inputs to the precise-BN average)."""

    def statistics_step(params: Params, batch_stats: Params, logmel: jax.Array) -> Params:
        model = nnx.merge(graphs.statistics, params, batch_stats)
        model(logmel)
        return nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))

    return statistics_step


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())
