"""The training job end to end on a tiny built dataset: train, checkpoint, resume, evaluate."""

import json
import logging
import os
import shutil
import signal
from pathlib import Path

import jax
import numpy as np
import pytest

from asf_jax import input_pipeline, train
from asf_jax.checkpoint import model_variables
from asf_jax.classifier import load_classifier
from asf_jax.configs import demo


def tiny_config(data_dir: Path, **train_fields):
    """The demo config shrunk to seconds: width 8, one block per stage, 128-frame clips."""
    config = demo.get_config()
    config.data.data_dir = str(data_dir)
    config.data.config = "slow"
    config.data.read_threads = 1
    config.train.global_batch_size = 4
    config.train.num_steps = 4
    config.train.log_every_steps = 1
    config.train.checkpoint_every_steps = 2
    config.train.precise_bn_batches = 2
    config.eval.every_epochs = 1000  # evaluate at the end only
    config.eval.global_batch_size = 4
    for key, value in train_fields.items():
        setattr(config.train, key, value)
    return config


def final_variables(workdir: Path, step: int) -> dict:
    return model_variables(load_classifier(workdir / "checkpoints" / str(step)).model)


def assert_same_tree(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


@pytest.fixture(scope="module")
def trained_run(tiny_dataset, tmp_path_factory) -> tuple[Path, dict]:
    """Six steps with checkpoints at 2, 4 and 6, then precise BN and evaluation."""
    workdir = tmp_path_factory.mktemp("trained") / "run"
    results = train.train_and_evaluate(tiny_config(tiny_dataset, num_steps=6), workdir)
    return workdir, results


def test_train_checkpoint_evaluate(trained_run, tiny_dataset, tmp_path):
    workdir, results = trained_run
    assert results["clips"] == 6  # every test clip exactly once
    for key in ("top1", "top5", "map", "auc", "dprime", "loss"):
        assert np.isfinite(results[key]), key
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["2", "4", "6"]
    assert list((workdir / "best").iterdir())
    assert (workdir / "eval" / "per_class_step6.csv").read_text().count("\n") == 4
    assert json.loads((workdir / "eval" / "metrics_step6.json").read_text()) == results
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))

    # The checkpoint is a classifier: evaluation only reproduces the training run's numbers.
    config = tiny_config(tiny_dataset)
    config.train.enable = False
    config.eval.checkpoint = str(workdir)
    evaluated = train.train_and_evaluate(config, tmp_path / "eval_only")
    assert evaluated == pytest.approx(results, abs=1e-6)
    classifier = load_classifier(workdir)
    assert classifier.class_names == ["beep", "hiss", "tick"]
    assert classifier.recipe.num_frames == 128


def test_preempted_run_resumes_to_identical_parameters(trained_run, tiny_dataset, tmp_path,
                                                       monkeypatch):
    config = tiny_config(tiny_dataset, num_steps=6, checkpoint_every_steps=100)
    calls = {"n": 0}
    shard_batch = input_pipeline.shard_batch

    def preempt_after_three_steps(batch, mesh):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return shard_batch(batch, mesh)

    monkeypatch.setattr(input_pipeline, "shard_batch", preempt_after_three_steps)
    assert train.train_and_evaluate(config, tmp_path / "preempted") == {}
    assert sorted(p.name for p in (tmp_path / "preempted" / "checkpoints").iterdir()) == ["3"]
    monkeypatch.setattr(input_pipeline, "shard_batch", shard_batch)
    train.train_and_evaluate(config, tmp_path / "preempted")
    assert_same_tree(final_variables(trained_run[0], 6),
                     final_variables(tmp_path / "preempted", 6))


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tiny_dataset, tmp_path):
    config = tiny_config(tiny_dataset, num_steps=6, checkpoint_every_steps=1)
    config.optim.schedule = "steps"
    config.optim.warmup_epochs = 0.0
    config.optim.decay_epochs = (1,)  # 3 steps per epoch: the learning rate explodes at step 3
    config.optim.decay_factor = 1e38
    with pytest.raises(train.NonFiniteLossError, match="last good checkpoint is step 3"):
        train.train_and_evaluate(config, tmp_path / "run")
    variables = final_variables(tmp_path / "run", 3)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(variables))


def test_corrupt_latest_checkpoint_falls_back_to_previous(trained_run, tiny_dataset, tmp_path,
                                                         caplog):
    workdir = tmp_path / "run"
    shutil.copytree(trained_run[0], workdir)
    for file in (workdir / "checkpoints" / "6" / "model").rglob("*"):
        if file.is_file():
            file.write_bytes(file.read_bytes()[:10])
    with caplog.at_level(logging.INFO):
        train.train_and_evaluate(tiny_config(tiny_dataset, num_steps=8), workdir)
    assert "Checkpoint step 6" in caplog.text and "unreadable" in caplog.text
    assert "step 4." in caplog.text
    assert (workdir / "checkpoints" / "8").is_dir()
