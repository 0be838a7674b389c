"""Smoke test of scripts/benchmark.py: the --quick run writes every number, all positive."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import benchmark

MODEL_FIELDS = {"mode", "arch", "width", "dtype", "batch_size", "compile_s", "step_s_median",
                "step_s_all", "clips_per_s", "gflop_per_clip_counted", "tflops_counted",
                "gflop_per_clip_xla", "tflops_xla", "mfu_counted", "mfu_xla", "xla_memory_bytes",
                "peak_memory_bytes", "peak_memory_source"}
DATA_FIELDS = {"extraction_clips_per_cpu_s", "build", "reference_build_clips_per_core_s",
               "pipeline_clips_per_cpu_s", "pipeline_batch_size",
               "target_pipeline_clips_per_core_s"}
BUILD_FIELDS = {"workers", "clips", "seconds", "clips_per_s", "clips_per_s_per_worker"}


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
    assert set(results["data"]) == DATA_FIELDS
    assert [set(b) for b in results["data"]["build"]] == [BUILD_FIELDS]
    assert results["data"]["build"][0]["clips"] == 4
    assert results["train"].pop("workers") == 0
    values = list(numbers([results["model"], results["data"], results["train"]]))
    assert values and all(isinstance(v, int | float) and v > 0 for v in values), values
    assert results["train"]["batch_size"] == 2 and results["train"]["clips_per_s"] > 0
    table = capsys.readouterr().out
    assert "| train | slowfast | 8 | float32 | 2 |" in table
    assert "| train pipeline, batch 32, SpecAugment |" in table
    assert "| end-to-end training (input included) |" in table


def test_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--only", "--arch", "--width", "--batch_sizes", "--dtype", "--repeats",
                 "--peak_tflops", "--build_clips", "--build_workers", "--pipeline_batches",
                 "--json", "--quick", "--modes", "--train_workers", "--vs_torch"):
        assert flag in text
