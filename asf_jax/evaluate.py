"""Evaluation of a model on a test split: the protocol, its metrics and where they are written.

Both test views of every clip, softmax summed over the views; top-1/top-5, mAP, mean AUC, d′ and
loss over all classes (asf_jax/metrics.py), a per-class CSV, a JSON file per evaluated step and
TensorBoard scalars. A model with a Label Embeddings Projection head trained without some classes
also gets its zero-shot accuracy on them. The same `Evaluator` serves a training run (evaluating
its state every few epochs) and an evaluation-only run of a checkpoint (`evaluate_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.struct
import jax
import numpy as np
from clu import metrics as clu_metrics
from flax import nnx
from jax.sharding import Mesh
from tqdm import tqdm

from asf_jax import input_pipeline, metrics
from asf_jax.checkpoint import CheckpointMeta
from asf_jax.classifier import load_classifier
from asf_jax.datasets import DatasetSplit, load_split
from asf_jax.lep import gzsl_accuracy, held_out_topk_accuracy, open_vocab_scores
from asf_jax.reporting import MetricWriter
from asf_jax.settings import Settings
from asf_jax.steps import Params, make_eval_step, replicated, split_variables


@flax.struct.dataclass
class EvalOutputs(clu_metrics.CollectingMetric):
    """Every clip's outputs of the evaluation step (summed view scores, label, LEP projection),
    gathered on the host; the padding cells of the last batch are dropped by their mask."""

    @classmethod
    def from_model_output(cls, **outputs: np.ndarray) -> EvalOutputs:
        return cls({name: (np.asarray(value),) for name, value in outputs.items()})

    def compute(self) -> dict[str, np.ndarray]:
        values = super().compute()
        keep = values.pop("mask")
        return {name: value[keep] for name, value in values.items()}


@dataclasses.dataclass(frozen=True)
class ZeroShot:
    """Classes kept out of training, scored by the LEP projection against their embeddings."""

    classes: tuple[int, ...]  # indices into the model's class names
    table: np.ndarray  # (classes, D) the class-name embeddings

    def metrics(self, projected: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Zero-shot accuracy on the held-out classes' test clips, ê against their rows only
        (`heldout_*`), and the generalised protocol where every class competes (`gzsl_*`)."""
        held_out = np.asarray(sorted(self.classes))
        chosen = np.isin(labels, held_out)
        accuracy = held_out_topk_accuracy(projected[chosen],
                                          np.searchsorted(held_out, labels[chosen]),
                                          self.table[held_out])
        seen, unseen, harmonic = gzsl_accuracy(
            np.asarray(open_vocab_scores(projected, self.table)), labels, held_out)
        return {"heldout_top1": accuracy.top1, "heldout_top5": accuracy.top5,
                "heldout_chance_top1": accuracy.chance_top1,
                "heldout_chance_top5": accuracy.chance_top5, "heldout_clips": int(chosen.sum()),
                "gzsl_seen": seen, "gzsl_unseen": unseen, "gzsl_h": harmonic}


class Evaluator:
    """Evaluates model variables on one split and reports the results (`run`)."""

    def __init__(self, graph: nnx.GraphDef, split: DatasetSplit, mesh: Mesh, batch_size: int,
                 zero_shot: ZeroShot | None = None):
        self.split = split
        self.mesh = mesh
        self.batch_size = batch_size
        self.zero_shot = zero_shot
        self._step: Callable = jax.jit(make_eval_step(graph), out_shardings=replicated(mesh))

    def outputs(self, params: Params, batch_stats: Params) -> dict[str, np.ndarray]:
        """`scores` (clips, classes), `label` and, for an LEP model, `projected` (clips, D), of
        every clip of the split exactly once."""
        collected = EvalOutputs.empty()
        total = input_pipeline.num_eval_batches(self.split.num_examples, self.batch_size)
        batches = input_pipeline.eval_batches(self.split.source, self.split.recipe,
                                               global_batch_size=self.batch_size)
        for batch in tqdm(batches, total=total, desc="eval", unit="batch",
                          disable=jax.process_index() > 0, leave=False):
            sharded = input_pipeline.shard_batch(
                {key: batch[key] for key in ("logmel", "label", "mask")}, self.mesh)
            out = jax.device_get(self._step(params, batch_stats, sharded))
            collected = collected.merge(EvalOutputs.from_model_output(**out))
        return collected.compute()

    def run(self, params: Params, batch_stats: Params, step: int, workdir: Path,
            writer: MetricWriter) -> dict[str, float]:
        """Evaluate, then write metrics_step<step>.json, per_class_step<step>.csv (in
        workdir/eval) and TensorBoard scalars."""
        outputs = self.outputs(params, batch_stats)
        extra = (self.zero_shot.metrics(outputs["projected"], outputs["label"])
                 if self.zero_shot else {})
        return report_evaluation(workdir, step, outputs["scores"], outputs["label"],
                                 self.split.class_names, writer, extra)


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


def evaluated_steps(workdir: Path) -> set[int]:
    """Steps whose evaluation results are in `workdir/eval`."""
    return {int(path.stem.removeprefix("metrics_step"))
            for path in (workdir / "eval").glob("metrics_step*.json")}


def read_like_checkpoint(meta: CheckpointMeta, split: DatasetSplit, source: str
                         ) -> DatasetSplit:
    """The split as the checkpoint reads its inputs: the features must be the same, and its
    recipe's `short_clips` (applied when the features are read) replaces the dataset's."""
    if meta.recipe.features != split.recipe.features:
        raise ValueError(f"{source} was trained with audio recipe {meta.recipe} but the dataset "
                         f"was built with {split.recipe}; build the dataset with that recipe")
    return dataclasses.replace(split, recipe=meta.recipe)


def check_matching_dataset(meta: CheckpointMeta, split: DatasetSplit, source: str
                           ) -> DatasetSplit:
    """... and, to be scored by its classifier head, its class order."""
    split = read_like_checkpoint(meta, split, source)
    if list(meta.class_names) != list(split.class_names):
        same_set = sorted(meta.class_names) == sorted(split.class_names)
        raise ValueError(f"{source}: its {len(meta.class_names)} classes "
                         + ("are in another order than" if same_set else "differ from")
                         + f" the dataset's {len(split.class_names)}")
    return split


def class_indices(names: Sequence[str], class_names: Sequence[str]) -> tuple[int, ...]:
    return tuple(class_names.index(name) for name in names)


def evaluate_checkpoint(settings: Settings, workdir: Path) -> dict[str, Any]:
    """Evaluation only (`--config.train.enable=False --config.eval.checkpoint=PATH`); an LEP
    checkpoint trained with held-out classes also gets its zero-shot metrics on them."""
    if not settings.eval.checkpoint:
        raise ValueError("evaluation only needs --config.eval.checkpoint=PATH (an asf_jax "
                         "checkpoint, a training workdir or a reference .pyth)")
    split = load_split(settings.data.path, settings.data.eval_split, settings.data.config,
                       settings.data.name)
    classifier = load_classifier(settings.eval.checkpoint)
    split = check_matching_dataset(classifier.meta, split, settings.eval.checkpoint)
    lep = classifier.meta.lep
    zero_shot = (ZeroShot(class_indices(lep.held_out_classes, classifier.class_names),
                          lep.embeddings.table)
                 if lep and lep.held_out_classes else None)
    mesh = input_pipeline.make_mesh()
    params, batch_stats = jax.device_put(split_variables(classifier.model), replicated(mesh))
    writer = MetricWriter(workdir)
    try:
        evaluator = Evaluator(classifier.graphdef, split, mesh, settings.eval.global_batch_size,
                              zero_shot)
        return evaluator.run(params, batch_stats, 0, workdir, writer)
    finally:
        writer.close()
