"""Train and evaluate an auditory Slow-Fast model: the logic behind `python -m asf_jax.main`.

Data parallel with `jax.jit` over a mesh of all devices (the batch sharded on its "data" axis, the
state replicated), so BatchNorm statistics are those of the global batch, as with the reference's
SyncBatchNorm. Works the same on one CPU, several GPUs, or every host of a TPU pod.

With `config.lep.enable` the model gets a Label Embeddings Projection head trained against a frozen
table of class-name embeddings (asf_jax/lep.py); `config.lep.held_out_classes` keeps K classes out
of training and reports how well the projection names their test clips (zero-shot).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from clu import parameter_overview
from flax import nnx
from tqdm import tqdm

from asf_jax import input_pipeline, metrics
from asf_jax.checkpoint import CheckpointMeta
from asf_jax.classifier import Classifier, load_classifier
from asf_jax.datasets import DatasetSplit, load_split
from asf_jax.embeddings import LabelEmbeddings, embed_labels, load_label_embeddings
from asf_jax.lep import (
    LEPClassifierModel,
    LEPHead,
    held_out_topk_accuracy,
    split_held_out_classes,
)
from asf_jax.models.slowfast import AudioResNet, ModelConfig, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.reporting import MetricWriter, Progress
from asf_jax.steps import (
    ModelGraphs,
    TrainState,
    cross_entropy_objective,
    lep_objective,
    make_eval_step,
    make_statistics_step,
    make_train_step,
    replicated,
    split_variables,
)
from asf_jax.train_checkpoints import TrainCheckpoints


class NonFiniteLossError(RuntimeError):
    """Training diverged; the message says where the last good checkpoint is."""


# ------------------------------------------------------------------------------------------------
# Set-up: model, schedule, initial weights.
# ------------------------------------------------------------------------------------------------


def model_config(config: ml_collections.ConfigDict, num_classes: int, num_frames: int
                 ) -> ModelConfig:
    fields = config.model.to_dict()
    return ModelConfig(num_classes=num_classes, num_frames=num_frames, **fields)


def make_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int
                  ) -> optax.Schedule:
    """Step decay at given epochs (the reference) or cosine, either after a linear warm-up."""
    optim = config.optim
    warmup = round(optim.warmup_epochs * steps_per_epoch)
    if optim.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, optim.learning_rate, warmup,
                                                  max(total_steps, warmup + 1))
    if optim.schedule != "steps":
        raise ValueError(f"config.optim.schedule must be 'steps' or 'cosine', got "
                         f"{optim.schedule!r}")
    boundaries = {int(epoch * steps_per_epoch) - warmup: optim.decay_factor
                  for epoch in optim.decay_epochs}
    decay = optax.piecewise_constant_schedule(optim.learning_rate, boundaries)
    if not warmup:
        return decay
    ramp = optax.linear_schedule(optim.learning_rate / warmup, optim.learning_rate, warmup)
    return optax.join_schedules([ramp, decay], [warmup])


def _flat_variables(module: nnx.Module, prefix: tuple[str, ...]) -> dict[tuple, nnx.Variable]:
    state = nnx.state(module, nnx.Any(nnx.Param, nnx.BatchStat))
    return {prefix + tuple(key): value for key, value in nnx.to_flat_state(state)}


def load_initial_weights(model: AudioResNet | LEPClassifierModel, path: str) -> None:
    """Fine-tuning: copy every variable whose name and shape match; report the rest.

    Into an LEP model, a baseline's variables go to its backbone (an LEP source's head too).
    """
    source = load_classifier(path)
    lep_target = isinstance(model, LEPClassifierModel)
    source_vars = _flat_variables(source.model, ("backbone",) if lep_target else ())
    if lep_target and source.lep_head is not None:
        source_vars |= _flat_variables(source.lep_head, ("head",))
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


# ------------------------------------------------------------------------------------------------
# Label Embeddings Projection: the frozen table, held-out classes.
# ------------------------------------------------------------------------------------------------


def label_embeddings(config: ml_collections.ConfigDict, class_names: list[str]
                     ) -> LabelEmbeddings:
    """The table at `config.lep.embeddings` (order checked), else embed the names by default."""
    if config.lep.embeddings:
        return load_label_embeddings(Path(config.lep.embeddings).expanduser(), class_names)
    return embed_labels(class_names)


def lep_meta(embeddings: LabelEmbeddings, lam: float, held_out: list[str]) -> dict[str, Any]:
    """What an LEP checkpoint records (meta `extra["lep"]`) to be loaded and used alone."""
    return {"dim": int(embeddings.table.shape[1]), "lam": float(lam),
            "encoder": embeddings.encoder, "held_out_classes": held_out,
            "embeddings": embeddings.table.tolist()}


def held_out_class_indices(config: ml_collections.ConfigDict, class_names: list[str]
                           ) -> list[int]:
    """The `config.lep.held_out_classes` classes kept out of training (chosen by config.seed)."""
    if not config.lep.held_out_classes:
        return []
    _, held_out = split_held_out_classes(class_names, config.lep.held_out_classes, config.seed)
    return [class_names.index(name) for name in held_out]


class IndexView(Sequence):
    """The records of `source` at `indices`: a filtered split without copying any clip."""

    def __init__(self, source: Sequence[Any], indices: np.ndarray):
        self.source = source
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.source[int(self.indices[index])]


def without_classes(split: DatasetSplit, classes: Sequence[int]) -> DatasetSplit:
    """The split minus the clips of `classes` (labels from the index stored with the dataset)."""
    keep = np.flatnonzero(~np.isin(split.labels(), classes))
    return dataclasses.replace(split, source=IndexView(split.source, keep), num_examples=len(keep),
                               info=None)


def config_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
    return json.loads(config.to_json_best_effort())


# ------------------------------------------------------------------------------------------------
# Evaluation.
# ------------------------------------------------------------------------------------------------


def evaluate(eval_step, params, batch_stats, split: DatasetSplit, mesh, batch_size: int
             ) -> dict[str, np.ndarray]:
    """`scores` (softmax summed over the test views), `label` and, for an LEP model,
    `projected` (ê averaged over the views) of every clip, exactly once."""
    outputs = []
    total = input_pipeline.num_eval_batches(split.num_examples, batch_size)
    batches = input_pipeline.eval_batches(split.source, global_batch_size=batch_size)
    for batch in tqdm(batches, total=total, desc="eval", unit="batch",
                      disable=jax.process_index() > 0, leave=False):
        sharded = input_pipeline.shard_batch(
            {key: batch[key] for key in ("logmel", "label", "mask")}, mesh)
        out = jax.device_get(eval_step(params, batch_stats, sharded))
        mask = out.pop("mask")
        outputs.append({key: value[mask] for key, value in out.items()})
    return {key: np.concatenate([out[key] for out in outputs]) for key in outputs[0]}


def held_out_metrics(projected: np.ndarray, labels: np.ndarray, held_out: Sequence[int],
                     table: np.ndarray) -> dict[str, float]:
    """Zero-shot accuracy on the held-out classes' test clips: ê against their embeddings only."""
    held_out = np.asarray(sorted(held_out))
    chosen = np.isin(labels, held_out)
    accuracy = held_out_topk_accuracy(projected[chosen], np.searchsorted(held_out, labels[chosen]),
                                      table[held_out])
    return {"heldout_top1": accuracy.top1, "heldout_top5": accuracy.top5,
            "heldout_chance_top1": accuracy.chance_top1,
            "heldout_chance_top5": accuracy.chance_top5, "heldout_clips": int(chosen.sum())}


def report_evaluation(workdir: Path, step: int, scores: np.ndarray, labels: np.ndarray,
                      class_names: list[str], writer: MetricWriter,
                      extra: dict[str, float] | None = None) -> dict[str, float]:
    """Metrics over all classes (plus `extra`): logged, and written to eval/ and TensorBoard."""
    results = metrics.compute_metrics(scores, labels, len(class_names)) | (extra or {})
    if jax.process_index() == 0:
        out = workdir / "eval"
        out.mkdir(parents=True, exist_ok=True)
        rows = metrics.per_class_metrics(scores, labels, class_names)
        metrics.write_per_class_csv(out / f"per_class_step{step}.csv", rows)
        (out / f"metrics_step{step}.json").write_text(json.dumps(results, indent=2))
        writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    logging.info("Evaluation at step %d: %s", step,
                 ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    return results


def check_matching_dataset(meta: CheckpointMeta, split: DatasetSplit, source: str) -> None:
    """A checkpoint evaluated on a dataset must share its features and its class order."""
    if meta.recipe.to_dict() | {"name": ""} != split.recipe.to_dict() | {"name": ""}:
        raise ValueError(f"{source} was trained with audio recipe {meta.recipe} but the dataset "
                         f"was built with {split.recipe}; build the dataset with that recipe")
    if list(meta.class_names) != list(split.class_names):
        same_set = sorted(meta.class_names) == sorted(split.class_names)
        raise ValueError(f"{source}: its {len(meta.class_names)} classes "
                         + ("are in another order than" if same_set else "differ from")
                         + f" the dataset's {len(split.class_names)}")


def stored_held_out_classes(classifier: Classifier) -> list[int]:
    """The classes an LEP checkpoint was trained without (indices into its class names)."""
    held_out = (classifier.extra.get("lep") or {}).get("held_out_classes") or []
    return [classifier.class_names.index(name) for name in held_out]


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: Path, split: DatasetSplit,
                        mesh) -> dict[str, float]:
    """Evaluation only (`--config.train.enable=False --config.eval.checkpoint=PATH`); an LEP
    checkpoint trained with held-out classes also gets its zero-shot metrics on them."""
    if not config.eval.checkpoint:
        raise ValueError("evaluation only needs --config.eval.checkpoint=PATH (an asf_jax "
                         "checkpoint, a training workdir or a reference .pyth)")
    classifier = load_classifier(config.eval.checkpoint)
    check_matching_dataset(classifier.meta, split, config.eval.checkpoint)
    model = (classifier.model if classifier.lep_head is None
             else LEPClassifierModel(classifier.model, classifier.lep_head))
    params, batch_stats = split_variables(model)
    eval_step = jax.jit(make_eval_step(nnx.graphdef(model)), out_shardings=replicated(mesh))
    params, batch_stats = jax.device_put((params, batch_stats), replicated(mesh))
    writer = MetricWriter(workdir)
    outputs = evaluate(eval_step, params, batch_stats, split, mesh,
                       config.eval.global_batch_size)
    held_out = stored_held_out_classes(classifier)
    zero_shot = (held_out_metrics(outputs["projected"], outputs["label"], held_out,
                                  classifier.label_embeddings.table) if held_out else None)
    results = report_evaluation(workdir, 0, outputs["scores"], outputs["label"],
                                split.class_names, writer, zero_shot)
    writer.close()
    return results


# ------------------------------------------------------------------------------------------------
# Training.
# ------------------------------------------------------------------------------------------------


def precise_batch_stats(statistics_step, state: TrainState, split: DatasetSplit, recipe,
                        config: ml_collections.ConfigDict, mesh) -> Any:
    """Average of the BatchNorm statistics of N training batches (the reference's precise BN)."""
    loader = input_pipeline.train_loader(
        split.source, recipe, global_batch_size=config.train.global_batch_size,
        seed=config.seed + 1, specaugment=config.specaugment,
        read_threads=config.data.read_threads)
    average = None
    for index in range(config.train.precise_bn_batches):
        batch = input_pipeline.shard_batch(next(loader), mesh)
        stats = statistics_step(state.params, state.batch_stats, batch["logmel"])
        average = stats if average is None else jax.tree.map(
            lambda mean, new, i=index: mean + (new - mean) / (i + 1), average, stats)
    return average


class PreemptionFlag:
    """Set by SIGTERM (TPU/spot preemption): the loop saves a checkpoint and exits cleanly."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        logging.warning("SIGTERM received: saving a checkpoint and stopping.")
        self.raised = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def check_finite(host_metrics: dict[str, float], step: int, checkpoints: TrainCheckpoints
                 ) -> None:
    if all(np.isfinite(host_metrics[k]) for k in ("loss", "grad_norm", "param_norm")):
        return
    last = checkpoints.latest.latest_step()
    where = (f"the last good checkpoint is step {last} in {checkpoints.latest.directory}"
             if last is not None else "no checkpoint was written")
    raise NonFiniteLossError(
        f"loss {host_metrics['loss']}, gradient norm {host_metrics['grad_norm']}, parameter norm "
        f"{host_metrics['param_norm']} at step {step}: not finite, training stopped; {where}. "
        "Lower the learning rate or set "
        "config.optim.clip_norm.")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path
                       ) -> dict[str, float]:
    """Train (resuming when possible) and evaluate; returns the last evaluation's metrics."""
    workdir = Path(workdir).expanduser().absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(config.data.data_dir).expanduser()
    eval_split = load_split(data_dir, config.data.eval_split, config.data.config)
    mesh = input_pipeline.make_mesh()
    if not config.train.enable:
        return evaluate_checkpoint(config, workdir, eval_split, mesh)

    train_split = load_split(data_dir, config.data.train_split, config.data.config)
    recipe, class_names = train_split.recipe, train_split.class_names
    held_out = held_out_class_indices(config, class_names)
    if held_out:
        train_split = without_classes(train_split, held_out)
        logging.info("Held out of training: %s; %d training clips left.",
                     [class_names[i] for i in held_out], train_split.num_examples)
    batch_size = config.train.global_batch_size
    steps_per_epoch = train_split.num_examples // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"the training split has {train_split.num_examples} clips, fewer than "
                         f"one global batch ({batch_size})")
    total_steps = config.train.num_steps or config.train.num_epochs * steps_per_epoch
    eval_every = max(1, round(config.eval.every_epochs * steps_per_epoch))

    # ---- Model and optimiser.
    dtype = {"float32": None, "bfloat16": jnp.bfloat16}[config.train.dtype]
    mconfig = model_config(config, len(class_names), recipe.num_frames)
    model = create_model(mconfig, seed=config.seed, dtype=dtype)
    objective, extra = cross_entropy_objective, {"config": config_json(config)}
    if config.lep.enable:
        embeddings = label_embeddings(config, class_names)
        model = LEPClassifierModel(model, LEPHead(len(class_names), embeddings.table.shape[1],
                                                  rngs=nnx.Rngs(config.seed)))
        objective = lep_objective(embeddings.table, config.lep.lam)
        extra["lep"] = lep_meta(embeddings, config.lep.lam, [class_names[i] for i in held_out])
    schedule = make_schedule(config, steps_per_epoch, total_steps)
    tx = sgd_with_decay(schedule, momentum=config.optim.momentum,
                        nesterov=config.optim.nesterov, weight_decay=config.optim.weight_decay,
                        clip_norm=config.optim.clip_norm)
    graphs = ModelGraphs.of(model)
    meta = CheckpointMeta(mconfig, recipe, class_names, source="trained with asf_jax",
                          extra=extra)
    checkpoints = TrainCheckpoints(workdir, graphs, keep=config.train.keep_checkpoints)
    loader = input_pipeline.train_loader(
        train_split.source, recipe, global_batch_size=batch_size, seed=config.seed,
        specaugment=config.specaugment, worker_count=config.data.worker_count,
        read_threads=config.data.read_threads)

    # ---- Resume order: a checkpoint in the workdir -> config.train.init_from -> from scratch.
    def fresh_state() -> TrainState:
        params, batch_stats = split_variables(model)
        return TrainState(step=jnp.asarray(0, jnp.int32), params=params,
                          batch_stats=batch_stats, opt_state=tx.init(params))

    resumed = checkpoints.restore_latest(fresh_state())
    if resumed is not None:
        state, iterator_state = resumed
        loader.set_state(iterator_state)
    else:
        if config.train.init_from:
            load_initial_weights(model, config.train.init_from)
        state = fresh_state()
    state = jax.device_put(state, replicated(mesh))
    if jax.process_index() == 0:
        logging.info("Model %s, %d steps (%d per epoch), global batch %d on %d devices.\n%s",
                     mconfig, total_steps, steps_per_epoch, batch_size, jax.device_count(),
                     parameter_overview.get_parameter_overview(jax.device_get(state.params)))

    train_step = jax.jit(make_train_step(graphs, tx, schedule, jax.random.key(config.seed),
                                         objective=objective), donate_argnums=0)
    eval_step = jax.jit(make_eval_step(graphs.infer), out_shardings=replicated(mesh))
    statistics_step = jax.jit(make_statistics_step(graphs), out_shardings=replicated(mesh))
    writer = MetricWriter(workdir, wandb_project=config.wandb.project,
                          wandb_entity=config.wandb.entity, config=config_json(config))
    preemption = PreemptionFlag()

    def save(host_metrics: dict[str, float] | None) -> None:
        if host_metrics is not None:
            check_finite(host_metrics, int(state.step), checkpoints)
        checkpoints.save(state, meta, loader.get_state())

    step = int(state.step)
    progress = Progress(total_steps, step, batch_size)
    results: dict[str, float] = {}
    try:
        while step < total_steps:
            state, step_metrics = train_step(state, input_pipeline.shard_batch(next(loader),
                                                                               mesh))
            step += 1
            host_metrics = None
            if step % config.train.log_every_steps == 0 or step == total_steps:
                host_metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
                check_finite(host_metrics, step, checkpoints)
                scalars = {f"train/{k}": v for k, v in host_metrics.items()} | progress.rates(step)
                writer.write_scalars(step, scalars)
                if jax.process_index() == 0:
                    logging.info(progress.line(step, scalars))
            if step % eval_every == 0 or step == total_steps:
                host_metrics = host_metrics or {
                    k: float(v) for k, v in jax.device_get(step_metrics).items()}
                if config.train.precise_bn_batches:
                    state = state.replace(batch_stats=precise_batch_stats(
                        statistics_step, state, train_split, recipe, config, mesh))
                outputs = evaluate(eval_step, state.params, state.batch_stats, eval_split, mesh,
                                   config.eval.global_batch_size)
                zero_shot = (held_out_metrics(outputs["projected"], outputs["label"], held_out,
                                              embeddings.table)
                             if held_out and config.lep.enable else None)
                results = report_evaluation(workdir, step, outputs["scores"], outputs["label"],
                                            class_names, writer, zero_shot)
                save(host_metrics)
                checkpoints.save_best(state, meta, loader.get_state(), results["top1"])
            elif step % config.train.checkpoint_every_steps == 0 or preemption.raised:
                save(host_metrics or {k: float(v) for k, v in
                                      jax.device_get(step_metrics).items()})
            if preemption.raised:
                logging.warning("Stopped at step %d after SIGTERM; rerun the same command to "
                                "resume.", step)
                break
    finally:
        preemption.restore()
        checkpoints.close()
        writer.close()
    if jax.process_index() == 0 and results:
        logging.info("Done. Workdir %s: checkpoints/ (latest), best/ (highest top-1), eval/ "
                     "(metrics, per-class CSV), tensorboard/.", workdir)
    return results

