"""A preemption notice to ONE of two processes stops both at the same step, with one whole
checkpoint, and the rerun resumes to exactly the parameters of an uninterrupted run.

Each run is `python -m asf_jax.main` as 2 processes x 4 fake CPU devices joined by
`jax.distributed` on localhost, on the tiny dataset. SIGTERM goes to process 1 only, once
process 0 has logged a few steps; JAX's preemption sync manager must carry the notice to process 0.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from asf_jax.checkpoint import model_variables
from asf_jax.classifier import load_classifier
from tests.test_sharding import free_port, launch, wait_all

NUM_STEPS = 8
LOG_STEP = re.compile(rf"step (\d+)/{NUM_STEPS}")


def main_args(data_dir: Path, workdir: Path, port: int, index: int) -> list[str]:
    return ["--config", "demo", "--workdir", str(workdir),
            f"--config.data.data_dir={data_dir}", "--config.data.config=slow",
            "--config.data.read_threads=1", "--config.train.global_batch_size=8",
            f"--config.train.num_steps={NUM_STEPS}", "--config.train.log_every_steps=1",
            "--config.train.checkpoint_every_steps=100", "--config.train.precise_bn_batches=1",
            "--config.eval.every_epochs=1000", "--config.eval.global_batch_size=8",
            "--coordinator_address", f"localhost:{port}", "--num_processes", "2",
            "--process_id", str(index)]


def start(data_dir: Path, workdir: Path, cache: Path, name: str) -> dict:
    """Both processes of one run, sharing a compilation cache with the other runs."""
    port = free_port()
    env = {"JAX_COMPILATION_CACHE_DIR": str(cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_DISABLE_MOST_OPTIMIZATIONS": "true"}
    runs = {}
    for index in range(2):
        log = workdir.parent / f"{name}{index}.log"
        runs[f"{name} process {index}"] = (
            launch(main_args(data_dir, workdir, port, index), 4, log, "asf_jax.main", env), log)
    return runs


def logged_step(log: Path) -> int:
    steps = LOG_STEP.findall(log.read_text(errors="replace")) if log.exists() else []
    return int(steps[-1]) if steps else 0


def variables(workdir: Path, step: int) -> dict:
    return model_variables(load_classifier(workdir / "checkpoints" / str(step)).model)


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("preemption")
    cache = root / "xla_cache"
    preempted, uninterrupted = root / "preempted", root / "uninterrupted"
    first = start(tiny_dataset, preempted, cache, "first")
    reference = start(tiny_dataset, uninterrupted, cache, "reference")
    (process0, log0), (process1, _) = first.values()
    deadline = time.monotonic() + 600
    while logged_step(log0) < 2 and process0.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert logged_step(log0) >= 2, log0.read_text()[-3000:]
    process1.send_signal(signal.SIGTERM)
    wait_all(first | reference)
    stopped = {path.name: path.read_text() for path in root.glob("first*.log")}
    wait_all(start(tiny_dataset, preempted, cache, "resumed"))
    return {"preempted": preempted, "uninterrupted": uninterrupted, "root": root,
            **{name: text for name, text in stopped.items()}}


def test_both_processes_stop_at_the_same_step_with_a_whole_checkpoint(runs):
    stops = [re.findall(r"Stopped at step (\d+) for a preemption", runs[f"first{i}.log"])
             for i in range(2)]
    assert stops[0] and stops[0] == stops[1], stops
    step = int(stops[0][0])
    assert 2 <= step < NUM_STEPS
    # The first run wrote exactly one checkpoint, at that step; the resumed run went on from it.
    steps = sorted(int(p.name) for p in (runs["preempted"] / "checkpoints").iterdir())
    assert steps == [step, NUM_STEPS]
    assert "Resumed from" in (runs["root"] / "resumed0.log").read_text()


def test_resumed_run_equals_the_uninterrupted_run(runs):
    resumed = variables(runs["preempted"], NUM_STEPS)
    reference = variables(runs["uninterrupted"], NUM_STEPS)
    jax.tree.map(np.testing.assert_array_equal, resumed, reference)
