"""scripts/gpu_benchmark.sh: valid bash, a help text, and benchmark commands that parse."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from asf_jax.benchmark import cli as benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_benchmark.sh"


def run(*args: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=30, env={"OUT": str(out), "PATH": "/usr/bin:/bin"})


def test_script_parses_and_has_help(tmp_path):
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    result = run("--help", out=tmp_path)
    assert result.returncode == 0
    for option in ("--workers", "--no_install", "--quick", "--dry_run", "OUT"):
        assert option in result.stdout
    assert run("--nonsense", out=tmp_path).returncode == 2


def test_dry_run_covers_both_dtypes_both_batches_and_end_to_end(tmp_path):
    result = run("--dry_run", "--workers", "6", out=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = []
    for line in result.stdout.splitlines():
        words = shlex.split(line)
        assert words[1:3] == ["-m", "asf_jax.benchmark"]
        # --vs_torch is checked apart: parsing it needs torch, which CI does not have.
        runs.append(benchmark.parse_args([w for w in words[3:] if w != "--vs_torch"]))
        assert ("--vs_torch" in words) == (runs[-1].only == "model")
        assert runs[-1].json.parent == tmp_path
    models = [r for r in runs if r.only == "model"]
    assert sorted((r.dtype, r.batch_sizes[0]) for r in models) == [
        ("bfloat16", 64), ("bfloat16", 256), ("float32", 64), ("float32", 256)]
    assert all(r.modes == ("train",) for r in models)
    (end_to_end,) = [r for r in runs if r.only == "train"]
    assert end_to_end.train_workers == 6 and end_to_end.batch_sizes == [256]
