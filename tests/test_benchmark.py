"""Smoke test of asf_jax.benchmark: the --quick run writes every number, all positive."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asf_jax.benchmark import cli as benchmark

ROOT = Path(__file__).resolve().parents[1]

MODEL_FIELDS = {"mode", "arch", "width", "dtype", "batch_size", "compile_s", "step_s_median",
                "step_s_all", "clips_per_s", "gflop_per_clip_counted", "tflops_counted",
                "gflop_per_clip_xla", "tflops_xla", "mfu_counted", "mfu_xla", "xla_memory_bytes",
                "peak_memory_bytes", "peak_memory_source"}
DATA_FIELDS = {"logmel_clips_per_cpu_s", "librosa_logmel_clips_per_cpu_s",
               "extraction_clips_per_cpu_s", "build_manual_dir", "build",
               "pipeline_clips_per_cpu_s", "pipeline_stage_us_per_clip", "pipeline_batch_size"}
BUILD_FIELDS = {"runs", "parent_ms_per_clip", "projected_vggsound_s", "speedup"}
RUN_FIELDS = {"workers", "clips", "seconds", "cpu_s", "clips_per_s"}


def numbers(value: Any) -> Iterator[Any]:
    """Every leaf of a JSON value that is not a string."""
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif not isinstance(value, str):
        yield value


def test_quick_run_reports_every_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    path = tmp_path / "bench.json"
    assert benchmark.main(["--quick", "--peak_tflops", "1", "--json", str(path)]) == 0
    results = json.loads(path.read_text())
    assert [(r["mode"], r["batch_size"], r["width"]) for r in results["model"]] == [
        ("inference", 2, 8), ("train", 2, 8)]
    for record in results["model"]:
        assert set(record) == MODEL_FIELDS
    data = results["data"]
    assert set(data) == DATA_FIELDS and set(data["build"]) == BUILD_FIELDS
    assert [(set(run), run["workers"], run["clips"]) for run in data["build"]["runs"]] == [
        (RUN_FIELDS, 1, 4), (RUN_FIELDS, 2, 4)]
    assert set(data["build"]["projected_vggsound_s"]) == {"8", "32", "96"}
    assert set(data["pipeline_stage_us_per_clip"]) == {"read", "decode", "crop", "specaugment",
                                                       "batch"}
    assert results["train"].pop("workers") == 0
    values = list(numbers([results["model"], results["data"], results["train"]]))
    assert values and all(isinstance(v, int | float) and v > 0 for v in values), values
    assert results["train"]["batch_size"] == 2 and results["train"]["clips_per_s"] > 0
    table = capsys.readouterr().out
    assert "| train | slowfast | 8 | float32 | 2 |" in table
    assert "| build, 2 worker(s), 4 clips (synthetic) |" in table
    assert "| VGG-Sound build (200,000 10-s WAVs) projected | 8 cores" in table
    assert "| train pipeline, batch 32, SpecAugment, float16 array_record |" in table
    assert "| end-to-end training (input included) |" in table


def test_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--only", "--arch", "--width", "--batch_sizes", "--dtype", "--repeats",
                 "--peak_tflops", "--build_clips", "--build_workers", "--build_manual_dir",
                 "--pipeline_batches", "--json", "--quick", "--modes", "--train_workers",
                 "--vs_torch"):
        assert flag in text


def test_scripts_wrapper_runs_the_package_command() -> None:
    """`python -m scripts.benchmark` stays the same command as `python -m asf_jax.benchmark`."""
    result = subprocess.run([sys.executable, "-m", "scripts.benchmark", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "--vs_torch" in result.stdout and "Benchmark the model" in result.stdout
