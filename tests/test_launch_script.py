"""scripts/launch_tpu_vm.sh: valid bash, a help text, and the gcloud commands it would run."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "launch_tpu_vm.sh"


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=30)


def test_script_parses_and_has_help():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    result = launch("--help")
    assert result.returncode == 0
    for option in ("--tpu", "--zone", "--project", "--workdir", "--config", "--setup"):
        assert option in result.stdout


@pytest.mark.parametrize("args", [(), ("--tpu", "t"), ("--tpu", "t", "--zone", "z"),
                                  ("--tpu", "t", "--zone", "z", "--setup"), ("--nonsense",)])
def test_missing_or_unknown_arguments_are_refused(args):
    result = launch(*args)
    assert result.returncode == 2 and "--help" in result.stderr


def test_dry_run_runs_the_same_distributed_command_on_all_workers():
    result = launch("--tpu", "my-tpu", "--zone", "us-central2-b", "--project", "proj",
                    "--workdir", "/mnt/gcs/runs/a b", "--data_dir", "/mnt/gcs/tfds", "--dry_run",
                    "--", "--config.train.global_batch_size=256")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    words = shlex.split(line)
    assert words[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-tpu"]
    assert "--worker=all" in words
    assert words[words.index("--zone") + 1] == "us-central2-b"
    assert words[words.index("--project") + 1] == "proj"
    remote = shlex.split(words[words.index("--command") + 1])
    assert remote[:3] == ["cd", "asf_jax", "&&"]
    assert remote[3:] == ["python3", "-m", "asf_jax.main", "--config", "configs/slowfast.py",
                          "--workdir", "/mnt/gcs/runs/a b", "--distributed",
                          "--config.data.data_dir=/mnt/gcs/tfds",
                          "--config.train.global_batch_size=256"]


def test_dry_run_setup_installs_on_all_workers():
    result = launch("--tpu", "my-tpu", "--zone", "z", "--setup", "--repo",
                    "https://example.com/asf_jax.git", "--dry_run")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    words = shlex.split(line)
    assert "--worker=all" in words
    remote = words[words.index("--command") + 1]
    assert "git clone https://example.com/asf_jax.git asf_jax" in remote
    assert "pip install -q -e ." in remote
