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
from asf_jax.embeddings import LabelEmbeddings, embed_labels
from asf_jax.finetune import load_initial_weights
from asf_jax.lep import LEPMeta
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
    lep = LEPMeta(LabelEmbeddings(table, TINY_CLASSES, "test"), lam=0.0)
    lep_state = step_once(tiny_model(tiny_dataset, EMBEDDING_DIM), lep_objective(lep))
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


def test_options_beyond_the_thesis_train_and_report_generalised_zero_shot(tiny_dataset, tmp_path):
    """Held out by name, a contrastive term on the pooled features' projection, λ warm-up."""
    config = lep_config(tiny_dataset, held_out="HISS", loss="contrastive", source="features",
                        lam_warmup_epochs=1.0)
    results = train.train_and_evaluate(config, tmp_path / "run")
    assert results["heldout_clips"] == 2 and results["heldout_chance_top1"] == 1.0
    for key in ("gzsl_seen", "gzsl_unseen", "gzsl_h"):
        assert 0.0 <= results[key] <= 1.0, key
    meta = read_meta(resolve_checkpoint_dir(tmp_path / "run"))
    assert meta.lep.held_out_classes == ("hiss",) and meta.lep.loss == "contrastive"
    assert meta.model.embedding_source == "features"


def renamed_dataset(root: Path, names: dict[str, str]) -> Path:
    """The tiny dataset's audio under other class names, built."""
    from asf_jax.datasets.build import build
    from tests.conftest import write_tiny_manual_dir

    manual = write_tiny_manual_dir(root / "manual")
    (manual / "classes.txt").write_text("\n".join(names.values()) + "\n")
    rows = [row.split(",") for row in (manual / "vggsound.csv").read_text().splitlines()]
    (manual / "vggsound.csv").write_text(
        "\n".join(",".join([*row[:2], names[row[2]], row[3]]) for row in rows) + "\n")
    build(str(manual), str(root / "tfds"), config="slow", workers=1)
    return root / "tfds"


def test_zero_shot_transfer_to_another_dataset_by_its_class_names(lep_run, baseline_checkpoint,
                                                                 tmp_path, capsys):
    from asf_jax import zero_shot

    names = {"beep": "electronic beeping", "hiss": "white noise hissing", "tick": "clock ticking"}
    data_dir = renamed_dataset(tmp_path, names)
    assert zero_shot.main(["--ckpt", str(lep_run[0]), "--data_dir", str(data_dir),
                           "--data_config", "slow", "--json", str(tmp_path / "z.json")]) == 0
    results = json.loads((tmp_path / "z.json").read_text())
    assert results["clips"] == 6 and results["chance_top1"] == pytest.approx(1 / 3)
    assert 0 <= results["top1"] <= 1 and results["top5"] == 1.0 and "loss" not in results
    assert "3 classes, 6 clips" in capsys.readouterr().out

    # A checkpoint without an LEP head cannot do this, and says so.
    assert zero_shot.main(["--ckpt", str(baseline_checkpoint), "--data_dir", str(data_dir),
                           "--data_config", "slow"]) == 2
    assert "no Label Embeddings Projection head" in capsys.readouterr().err
