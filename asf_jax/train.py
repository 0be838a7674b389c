"""Train an auditory Slow-Fast model: the logic behind `python -m asf_jax.main`.

Data parallel with `jax.jit` over a mesh of all devices (the batch sharded on its "data" axis, the
state replicated), so BatchNorm statistics are those of the global batch, as with the reference's
SyncBatchNorm. Works the same on one CPU, several GPUs, or every host of a TPU pod.

The config becomes typed settings once, here; evaluation lives in asf_jax/evaluate.py. With
`lep.enable` the model has a Label Embeddings Projection head trained against a frozen table of
class-name embeddings (asf_jax/lep.py); `lep.held_out_classes` keeps K classes out of training
and reports how well the projection names their test clips (zero-shot).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from clu import parameter_overview

from asf_jax import input_pipeline
from asf_jax.checkpoint import CheckpointMeta
from asf_jax.datasets import DatasetSplit, load_split
from asf_jax.evaluate import Evaluator, ZeroShot, evaluate_checkpoint, evaluated_steps
from asf_jax.finetune import load_initial_weights
from asf_jax.lep import LEPMeta, classes_by_name, held_out_class_indices, label_table
from asf_jax.models.slowfast import count_parameters, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.preemption import Preemption
from asf_jax.reporting import MetricWriter, ProfileWindow, Progress, RunningMeans
from asf_jax.settings import OptimSettings, Settings
from asf_jax.steps import (
    Mixup,
    ModelGraphs,
    TrainState,
    cross_entropy_objective,
    lep_objective,
    make_statistics_step,
    make_train_step,
    replicated,
    split_variables,
)
from asf_jax.train_checkpoints import TrainCheckpoints


class NonFiniteLossError(RuntimeError):
    """Training diverged; the message says where the last good checkpoint is."""


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path
                       ) -> dict[str, float]:
    """Train (resuming when possible) and evaluate; returns the last evaluation's metrics
    (empty when stopped by a preemption before any evaluation of this run)."""
    settings = Settings.from_config(config)
    workdir = Path(workdir).expanduser().absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    if not settings.train.enable:
        return evaluate_checkpoint(settings, workdir)
    return Trainer(settings, workdir).run()


# ------------------------------------------------------------------------------------------------
# Schedule and checks.
# ------------------------------------------------------------------------------------------------


def make_schedule(optim: OptimSettings, steps_per_epoch: int, total_steps: int
                  ) -> optax.Schedule:
    """Step decay at given epochs (the reference) or cosine, either after a linear warm-up."""
    warmup = round(optim.warmup_epochs * steps_per_epoch)
    if optim.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, optim.learning_rate, warmup,
                                                  max(total_steps, warmup + 1))
    boundaries = {int(epoch * steps_per_epoch) - warmup: optim.decay_factor
                  for epoch in optim.decay_epochs}
    decay = optax.piecewise_constant_schedule(optim.learning_rate, boundaries)
    if not warmup:
        return decay
    ramp = optax.linear_schedule(optim.learning_rate / warmup, optim.learning_rate, warmup)
    return optax.join_schedules([ramp, decay], [warmup])


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
        "Lower the learning rate or set config.optim.clip_norm.")


# ------------------------------------------------------------------------------------------------
# The trainer.
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Data:
    """The splits of a run and what the model is built for."""

    train: DatasetSplit  # without the held-out classes
    eval: DatasetSplit
    held_out: tuple[int, ...]  # classes kept out of training (zero-shot test)

    @property
    def class_names(self) -> list[str]:
        return self.eval.class_names


def load_data(settings: Settings) -> Data:
    data = settings.data
    train_split = load_split(data.path, data.train_split, data.config, data.name)
    eval_split = load_split(data.path, data.eval_split, data.config, data.name)
    if data.short_clips:  # read time only: the same records, filled another way
        recipe = dataclasses.replace(train_split.recipe, short_clips=data.short_clips)
        train_split, eval_split = (dataclasses.replace(split, recipe=recipe)
                                   for split in (train_split, eval_split))
    held_out = classes_by_name(settings.lep.held_out, train_split.class_names)
    if settings.lep.held_out_classes:
        held_out = held_out_class_indices(len(train_split.class_names),
                                          settings.lep.held_out_classes, settings.seed)
    if held_out:
        train_split = train_split.without_classes(held_out)
        logging.info("Held out of training: %s; %d training clips left.",
                     [train_split.class_names[i] for i in held_out], train_split.num_examples)
    if train_split.num_examples < settings.train.global_batch_size:
        raise ValueError(f"the training split has {train_split.num_examples} clips, fewer than "
                         f"one global batch ({settings.train.global_batch_size})")
    return Data(train_split, eval_split, held_out)


class Trainer:
    """Set-up (model, optimiser, checkpoints, resume) and the training loop of one run."""

    def __init__(self, settings: Settings, workdir: Path):
        self.settings = settings
        self.workdir = workdir
        self.data = load_data(settings)
        train = settings.train
        self.steps_per_epoch = self.data.train.num_examples // train.global_batch_size
        self.total_steps = train.num_steps or train.num_epochs * self.steps_per_epoch
        self.eval_every = max(1, round(settings.eval.every_epochs * self.steps_per_epoch))
        self.mesh = input_pipeline.make_mesh()

        # ---- Model, objective and what the checkpoints record about them.
        class_names, recipe = self.data.class_names, self.data.train.recipe
        lep = None
        if settings.lep.enable:
            table = label_table(class_names, settings.lep.embeddings, settings.lep.encoder,
                                settings.lep.templates)
            lep = LEPMeta(table, settings.lep.lam,
                          tuple(class_names[i] for i in self.data.held_out), settings.lep.loss,
                          settings.lep.temperature)
        embedding_dim = lep.embeddings.table.shape[1] if lep else 0
        model_config = settings.model_config(len(class_names), recipe.num_frames, embedding_dim)
        dtype = {"float32": None, "bfloat16": jnp.bfloat16}[train.dtype]
        self.model = create_model(model_config, seed=settings.seed, dtype=dtype)
        trained = ~np.isin(np.arange(len(class_names)), self.data.held_out)
        warmup = round(settings.lep.lam_warmup_epochs * self.steps_per_epoch)
        self.objective = (lep_objective(lep, trained, warmup) if lep
                          else cross_entropy_objective)
        self.meta = CheckpointMeta(model_config, recipe, class_names,
                                   source="trained with asf_jax", lep=lep,
                                   config=settings.config_json)
        self.zero_shot = (ZeroShot(self.data.held_out, lep.embeddings.table)
                          if lep and self.data.held_out else None)
        self.schedule = make_schedule(settings.optim, self.steps_per_epoch, self.total_steps)
        optim, finetune = settings.optim, settings.finetune
        self.tx = sgd_with_decay(
            self.schedule, momentum=optim.momentum, nesterov=optim.nesterov,
            weight_decay=optim.weight_decay, clip_norm=optim.clip_norm,
            backbone_lr_multiplier=0.0 if finetune.backbone_frozen
            else finetune.backbone_lr_multiplier)
        self.graphs = ModelGraphs.of(self.model, finetune.batch_stats_frozen)

    def loader(self, seed: int, worker_count: int = 0):
        settings = self.settings
        return input_pipeline.train_loader(
            self.data.train.source, self.data.train.recipe,
            global_batch_size=settings.train.global_batch_size, seed=seed,
            specaugment=settings.specaugment, worker_count=worker_count,
            read_threads=settings.data.read_threads)

    def initial_state(self, checkpoints: TrainCheckpoints, loader) -> TrainState:
        """Resume order: a checkpoint in the workdir -> `train.init_from` -> from scratch."""
        def fresh_state() -> TrainState:
            params, batch_stats = split_variables(self.model)
            return TrainState(step=jnp.asarray(0, jnp.int32), params=params,
                              batch_stats=batch_stats, opt_state=self.tx.init(params))

        resumed = checkpoints.restore_latest(fresh_state(), replicated(self.mesh))
        if resumed is not None:
            state, iterator_state = resumed
            loader.set_state(iterator_state)
            return state
        if self.settings.train.init_from:
            load_initial_weights(self.model, self.settings.train.init_from)
        return fresh_state()

    def describe_model(self, state: TrainState) -> None:
        """One line on the console; the parameter table goes to WORKDIR/parameters.txt."""
        if jax.process_index() > 0:
            return
        table = parameter_overview.get_parameter_overview(jax.device_get(state.params))
        (self.workdir / "parameters.txt").write_text(table + "\n")
        config = self.meta.model
        logging.info("Model %s depth %d width %d: %s parameters (table in %s); %d steps (%d per "
                     "epoch), global batch %d on %d devices.", config.arch, config.depth,
                     config.width, f"{count_parameters(self.model):,}",
                     self.workdir / "parameters.txt", self.total_steps, self.steps_per_epoch,
                     self.settings.train.global_batch_size, jax.device_count())

    def precise_batch_stats(self, statistics_step, state: TrainState) -> TrainState:
        """Average of the BatchNorm statistics of N training batches (the reference's precise BN).

        Deterministic given the parameters, so computing it again after a resume gives the same.
        """
        count = self.settings.train.precise_bn_batches
        if not count or self.settings.finetune.batch_stats_frozen:
            return state
        loader = self.loader(self.settings.seed + 1)
        average = None
        for index in range(count):
            batch = input_pipeline.shard_batch(next(loader), self.mesh)
            stats = statistics_step(state.params, state.batch_stats, batch["logmel"])
            average = stats if average is None else jax.tree.map(
                lambda mean, new, i=index: mean + (new - mean) / (i + 1), average, stats)
        return state.replace(batch_stats=average)

    def is_eval_step(self, step: int) -> bool:
        return step % self.eval_every == 0 or step == self.total_steps

    def run(self) -> dict[str, float]:
        """Train to the last step, evaluating and checkpointing on the way; stops early, with a
        checkpoint, at a preemption."""
        settings, mesh = self.settings, self.mesh
        checkpoints = TrainCheckpoints(self.workdir, self.graphs,
                                       keep=settings.train.keep_checkpoints)
        loader = self.loader(settings.seed, settings.data.worker_count)
        state = jax.device_put(self.initial_state(checkpoints, loader), replicated(mesh))
        self.describe_model(state)
        mixup = settings.mixup
        train_step = jax.jit(make_train_step(
            self.graphs, self.tx, self.schedule, jax.random.key(settings.seed),
            objective=self.objective, freeze_backbone=settings.finetune.backbone_frozen,
            mixup=Mixup(mixup.rate, mixup.alpha) if mixup.rate else None), donate_argnums=0)
        statistics_step = jax.jit(make_statistics_step(self.graphs),
                                  out_shardings=replicated(mesh))
        writer = MetricWriter(self.workdir, wandb_project=settings.wandb.project,
                              wandb_entity=settings.wandb.entity, config=settings.config_json)
        evaluator = Evaluator(self.graphs.infer, self.data.eval, mesh,
                              settings.eval.global_batch_size, self.zero_shot)
        preemption = Preemption(checkpoints.latest)
        step = int(state.step)
        profile = ProfileWindow(self.workdir, step, settings.train.profile_steps)
        progress = Progress(self.total_steps, step, settings.train.global_batch_size)
        means = RunningMeans()
        results: dict[str, float] = {}

        def save(step_metrics: dict[str, jax.Array]) -> None:
            check_finite({k: float(v) for k, v in jax.device_get(step_metrics).items()}, step,
                         checkpoints)
            checkpoints.save(state, self.meta, loader.get_state())

        def evaluate() -> dict[str, float]:
            nonlocal state
            state = self.precise_batch_stats(statistics_step, state)
            step_results = evaluator.run(state.params, state.batch_stats, step, self.workdir,
                                         writer)
            checkpoints.save_best(state, self.meta, loader.get_state(), step_results["top1"])
            return step_results

        try:
            if step and self.is_eval_step(step):  # resumed at an evaluation step
                if step not in evaluated_steps(self.workdir):  # preempted before evaluating
                    results = evaluate()
                elif step < self.total_steps:  # the statistics the run went on with
                    state = self.precise_batch_stats(statistics_step, state)
            while step < self.total_steps:
                profile.step(step)
                state, step_metrics = train_step(state, input_pipeline.shard_batch(next(loader),
                                                                                   mesh))
                step += 1
                means.update(step_metrics)
                preempted = preemption.reached(step)
                if (step % settings.train.log_every_steps == 0 or step == self.total_steps
                        or preempted):
                    self.log(means.compute(), step, progress, writer, checkpoints)
                if preempted:  # save first: evaluation runs after the resume
                    save(step_metrics)
                    logging.warning("Stopped at step %d for a preemption; rerun the same command "
                                    "to resume.", step)
                    break
                if self.is_eval_step(step):
                    results = evaluate()
                    save(step_metrics)
                elif step % settings.train.checkpoint_every_steps == 0:
                    save(step_metrics)
        finally:
            profile.close()
            preemption.close()
            checkpoints.close()
            writer.close()
        if jax.process_index() == 0 and step == self.total_steps:
            logging.info("Done. Workdir %s: checkpoints/ (latest), best/ (highest top-1), eval/ "
                         "(metrics, per-class CSV), tensorboard/.", self.workdir)
        return results

    def log(self, means: dict[str, float], step: int, progress: Progress, writer: MetricWriter,
            checkpoints: TrainCheckpoints) -> None:
        check_finite(means, step, checkpoints)
        scalars = {f"train/{k}": v for k, v in means.items()} | progress.rates(step)
        writer.write_scalars(step, scalars)
        if jax.process_index() == 0:
            logging.info(progress.line(step, scalars))
