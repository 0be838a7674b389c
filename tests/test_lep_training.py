"""Training with the Label Embeddings Projection head: loss, held-out classes, checkpoints, CLI."""

import json
import logging
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile
from flax import nnx

from asf_jax import predict, train
from asf_jax.checkpoint import (
    CheckpointMeta,
    model_variables,
    read_meta,
    resolve_checkpoint_dir,
    save_classifier,
)
from asf_jax.classifier import load_classifier
from asf_jax.datasets import load_split
from asf_jax.embeddings import embed_labels
from asf_jax.finetune import load_initial_weights
from asf_jax.models.slowfast import AudioResNet, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.settings import Settings
from asf_jax.steps import (
    ModelGraphs,
    TrainState,
    lep_objective,
    make_train_step,
    split_variables,
)
from tests.conftest import TINY_CLASSES
from tests.test_train import tiny_config

EMBEDDING_DIM = 50  # the default encoder, GloVe-6B-50d


def lep_config(data_dir: Path, **lep_fields):
    config = tiny_config(data_dir, num_steps=2, precise_bn_batches=0)
    config.lep.enable = True
    config.optim.clip_norm = 1.0
    for key, value in lep_fields.items():
        setattr(config.lep, key, value)
    return config


def tiny_model(data_dir: Path, embedding_dim: int = 0) -> AudioResNet:
    settings = Settings.from_config(tiny_config(data_dir))
    return create_model(settings.model_config(len(TINY_CLASSES), 128, embedding_dim))


def without_head(tree: dict) -> dict:
    return {key: value for key, value in tree.items() if key != "lep_head"}


@pytest.fixture(scope="module")
def baseline_checkpoint(tiny_dataset, tmp_path_factory) -> Path:
    """An untrained baseline saved as a classifier checkpoint (the source of a fine-tune)."""
    backbone = tiny_model(tiny_dataset)
    recipe = load_split(tiny_dataset, "train", "slow").recipe
    meta = CheckpointMeta(backbone.config, recipe, list(TINY_CLASSES), source="test baseline")
    return save_classifier(tmp_path_factory.mktemp("baseline") / "ckpt", backbone, meta)


@pytest.fixture(scope="module")
def lep_run(tiny_dataset, baseline_checkpoint, tmp_path_factory) -> tuple[Path, dict]:
    """Two LEP steps fine-tuned from the baseline, two of the three classes held out."""
    workdir = tmp_path_factory.mktemp("lep") / "run"
    config = lep_config(tiny_dataset, held_out_classes=2)
    config.train.init_from = str(baseline_checkpoint)
    return workdir, train.train_and_evaluate(config, workdir)


def step_once(model: nnx.Module, objective=None) -> TrainState:
    graphs = ModelGraphs.of(model)
    tx = sgd_with_decay(0.1)
    params, batch_stats = split_variables(model)
    state = TrainState(step=np.int32(0), params=params, batch_stats=batch_stats,
                       opt_state=tx.init(params))
    kwargs = {} if objective is None else {"objective": objective}
    step = jax.jit(make_train_step(graphs, tx, lambda _: 0.1, jax.random.key(0), **kwargs))
    batch = {"logmel": np.random.default_rng(0).standard_normal((4, 128, 128), np.float32),
             "label": np.array([0, 1, 2, 1], np.int32)}
    new_state, metrics = step(state, batch)
    assert np.isfinite(float(metrics["loss"]))
    return new_state


def test_lambda_zero_gives_the_baseline_backbone_update(tiny_dataset):
    table = np.random.default_rng(1).standard_normal((len(TINY_CLASSES), EMBEDDING_DIM))
    lep_state = step_once(tiny_model(tiny_dataset, EMBEDDING_DIM), lep_objective(table, 0.0))
    baseline_state = step_once(tiny_model(tiny_dataset))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 without_head(lep_state.params), baseline_state.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 lep_state.batch_stats, baseline_state.batch_stats)


def test_init_from_a_baseline_fills_the_backbone_and_reports_the_fresh_head(
        tiny_dataset, baseline_checkpoint, caplog):
    model = tiny_model(tiny_dataset, EMBEDDING_DIM)
    head_before = model_variables(model.lep_head)
    with caplog.at_level(logging.INFO):
        load_initial_weights(model, str(baseline_checkpoint))
    source = load_classifier(baseline_checkpoint).model
    jax.tree.map(np.testing.assert_array_equal, without_head(model_variables(model)),
                 model_variables(source))
    jax.tree.map(np.testing.assert_array_equal, model_variables(model.lep_head), head_before)
    assert "re-initialised 2: lep_head/projection/bias, lep_head/projection/kernel" in caplog.text


def test_lep_training_reports_held_out_and_loss_terms(lep_run):
    workdir, results = lep_run
    assert results["clips"] == 6  # the regular metrics cover every class
    assert np.isfinite(results["top1"]) and np.isfinite(results["map"])
    assert results["heldout_clips"] == 4  # two held-out classes, two test clips each
    assert results["heldout_chance_top1"] == 0.5 and results["heldout_chance_top5"] == 1.0
    assert results["heldout_top5"] == 1.0 and 0.0 <= results["heldout_top1"] <= 1.0
    meta = read_meta(resolve_checkpoint_dir(workdir))
    assert meta.model.embedding_dim == EMBEDDING_DIM and meta.lep.lam == 0.5
    assert meta.lep.embeddings.encoder == "glove-6b-50d"
    assert meta.lep.embeddings.table.shape == (len(TINY_CLASSES), EMBEDDING_DIM)
    assert len(meta.lep.held_out_classes) == 2


def test_lep_checkpoint_loads_and_projects(lep_run):
    classifier = load_classifier(lep_run[0])
    logmel = np.random.default_rng(0).standard_normal((3, 128, 128)).astype(np.float32)
    assert classifier.logits(logmel).shape == (3, len(TINY_CLASSES))
    assert classifier.project(logmel).shape == (3, EMBEDDING_DIM)
    np.testing.assert_allclose(classifier.label_embeddings.table,
                               embed_labels(TINY_CLASSES).table, rtol=1e-6)


def test_predict_ranks_any_label_texts(lep_run, baseline_checkpoint, tmp_path, capsys):
    wav = tmp_path / "clip.wav"
    soundfile.write(wav, 0.1 * np.random.default_rng(0).standard_normal(32000), 16000)
    labels = ["dog barking", "rain", "beep", "engine"]
    assert predict.main(["--ckpt", str(lep_run[0]), "--labels", ",".join(labels), "--json",
                         str(wav)]) == 0
    ranked = json.loads(capsys.readouterr().out)[0]["labels"]
    assert sorted(entry["label"] for entry in ranked) == sorted(labels)
    scores = [entry["score"] for entry in ranked]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)

    assert predict.main(["--ckpt", str(baseline_checkpoint), "--labels", "rain",
                         str(wav)]) == 2
    assert "Label Embeddings Projection head" in capsys.readouterr().err


def test_evaluation_only_of_an_lep_checkpoint_gives_its_held_out_metrics(
        lep_run, tiny_dataset, tmp_path):
    workdir, trained = lep_run
    config = lep_config(tiny_dataset)
    config.lep.enable = False  # evaluation only reads the head and the table from the checkpoint
    config.train.enable = False
    config.eval.checkpoint = str(workdir)
    results = train.train_and_evaluate(config, tmp_path / "eval")
    for key in ("top1", "top5", "map", "heldout_top1", "heldout_top5", "heldout_clips",
                "heldout_chance_top1"):
        assert results[key] == pytest.approx(trained[key], abs=1e-5), key
