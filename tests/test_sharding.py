"""Data parallelism: sharded over 8 devices or 2 processes x 4, a train step is the same step.

JAX fixes the device count at start-up, so the runs are subprocesses of tests/sharding_worker.py
on fake CPU devices (`--xla_force_host_platform_device_count`); the 2-process run joins through
`jax.distributed` on localhost (CPU collectives: gloo, JAX's default). All three processes start
together and each writes its results to an .npz file that the tests compare.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600  # all runs together; ~1.5 min on an idle 2-core machine
RTOL = 1e-5  # float32 sums in another order: relative to each array's largest value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def launch(args: list[str], devices: int, log: Path, module: str = "tests.sharding_worker",
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m module args` on `devices` fake CPU devices, its output into `log`."""
    env = os.environ | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
                        "JAX_PLATFORMS": "cpu"} | (env or {})
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_all(runs: dict[str, tuple[subprocess.Popen, Path]]) -> None:
    """Wait for every run; on a failure or the time-out, kill the rest and show their logs."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for name, (process, log) in runs.items():
            try:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still running after {TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            if process.returncode:
                pytest.fail(f"{name} exited with {process.returncode}:\n"
                            f"{log.read_text()[-3000:]}")
    finally:
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def results(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """1 process x 8 devices (also the 8-vs-1-device step) and 2 processes x 4 devices."""
    root = tmp_path_factory.mktemp("sharding")
    single, multi = root / "single", root / "multi"
    single.mkdir()
    multi.mkdir()
    common = ["--data_dir", str(tiny_dataset)]
    runs = {"1 process x 8 devices": (launch(
        [*common, "--out", str(single), "--compare_one_device"], 8, root / "single.log"),
        root / "single.log")}
    port = free_port()
    for index in range(2):
        log = root / f"multi{index}.log"
        runs[f"process {index} of 2 x 4 devices"] = (launch(
            [*common, "--out", str(multi), "--coordinator_address", f"localhost:{port}",
             "--num_processes", "2", "--process_id", str(index)], 4, log), log)
    wait_all(runs)
    return {"single": single, "multi": multi}


def variables(result: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """{"params/...": array, "batch_stats/...": array} of one run in a result file."""
    return {key[len(prefix) + 1:]: result[key] for key in result
            if key.startswith(prefix + "/") and key.split("/")[1] in ("params", "batch_stats")}


def assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        scale = max(float(np.abs(value).max()), 1e-6)
        error = float(np.abs(actual[key] - value).max())
        assert error <= RTOL * scale, f"{key}: differs by {error:.3g}, largest value {scale:.3g}"


def test_sharded_step_equals_one_device_step(results):
    step = dict(np.load(results["single"] / "step.npz"))
    # The batch is split over the 8 devices, one clip each; the state stays replicated.
    assert step["all/batch_devices"] == 8
    np.testing.assert_array_equal(step["all/batch_shard_rows"], [1] * 8)
    assert step["all/state_replicated"] and set(step["all/state_devices"]) == {8}
    assert step["one/batch_devices"] == 1 and set(step["one/state_devices"]) == {1}

    initial, one = variables(step, "initial"), variables(step, "one")
    stats = [key for key in one if key.startswith("batch_stats/")]
    assert stats and all(np.abs(one[key] - initial[key]).max() > 1e-4 for key in stats)
    assert np.abs(one["params/head/kernel"] - initial["params/head/kernel"]).max() > 1e-4

    # BatchNorm statistics and gradients over the global batch, whatever the device count.
    np.testing.assert_allclose(step["all/loss"], step["one/loss"], rtol=RTOL)
    assert_close(variables(step, "all"), one)


def test_two_processes_train_like_one(results):
    single = dict(np.load(results["single"] / "process0.npz"))
    first, second = (dict(np.load(results["multi"] / f"process{i}.npz")) for i in range(2))
    assert (single["process_count"], single["device_count"], single["local_device_count"]) == (
        1, 8, 8)
    for result in (first, second):
        assert (result["process_count"], result["device_count"],
                result["local_device_count"]) == (2, 8, 4)

    # Both processes hold the same replicated state ...
    np.testing.assert_array_equal(first["losses"], second["losses"])
    replica = variables(second, "final")
    for key, value in variables(first, "final").items():
        np.testing.assert_array_equal(replica[key], value, err_msg=key)
    # ... and their two halves of each global batch train as the single process's whole batch.
    assert len(single["losses"]) == 3
    np.testing.assert_allclose(first["losses"], single["losses"], rtol=RTOL)
    assert_close(variables(first, "final"), variables(single, "final"))
