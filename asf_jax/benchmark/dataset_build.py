"""Dataset-build benchmark: fresh builds with each worker count, the writing process's CPU per
clip, and the VGG-Sound build time that these project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from asf_jax.benchmark.clips import write_synthetic_manual_dir

VGGSOUND_CLIPS = 200_000
PROJECTED_CORES = (8, 32, 96)

_BUILD_SCRIPT = """
import json, resource, sys, time
from asf_jax.datasets.build import build
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
manual, data_dir, config, workers = sys.argv[1:5]
cpu_begin, begin = cpu(), time.perf_counter()
builder = build(manual, data_dir, config=config, workers=int(workers), cache=False)
print(json.dumps({"seconds": time.perf_counter() - begin, "cpu_s": cpu() - cpu_begin,
                  "clips": sum(builder.report.kept.values())}))
"""


def build_run(manual: Path, workers: int, build_config: str) -> dict[str, Any]:
    """One fresh build in a new process, as the command line runs it: the wall seconds of
    `build()` (worker start-up included, imports not), and the CPU seconds of that process
    alone. With 2+ workers its only work is to receive, serialise and write the records: the
    part of a build that does not run in parallel."""
    with tempfile.TemporaryDirectory() as data_dir:
        result = subprocess.run(
            [sys.executable, "-c", _BUILD_SCRIPT, str(manual), data_dir, build_config,
             str(workers)], capture_output=True, text=True, check=True,
            env=dict(os.environ, TQDM_DISABLE="1"))
    run = json.loads(result.stdout.strip().splitlines()[-1])
    return {"workers": workers, **run, "clips_per_s": run["clips"] / run["seconds"]}


def projected_build_s(worker_s_per_clip: float, parent_s_per_clip: float, cores: int,
                      clips: int = VGGSOUND_CLIPS) -> float:
    """Seconds to build `clips`: all cores work (the writing process's share included) unless the
    writing process, which handles every clip in turn, is the slower part."""
    clips_per_s = min(cores / (worker_s_per_clip + parent_s_per_clip), 1 / parent_s_per_clip)
    return clips / clips_per_s


def benchmark_build(manual: Path, build_workers: list[int], build_config: str,
                    worker_s_per_clip: float) -> dict[str, Any]:
    """Builds with each worker count; the writing process's CPU per clip (the slope between the
    build with most workers and one of 2 clips, so that fixed costs drop out), projections."""
    runs = [build_run(manual, workers, build_config) for workers in build_workers]
    for run in runs:
        print(f"  build, {run['workers']} worker(s): {run['clips_per_s']:.1f} clips/s, "
              f"{run['cpu_s']:.2f} CPU-s in the main process", flush=True)
    result: dict[str, Any] = {"runs": runs}
    widest = max(runs, key=lambda run: run["workers"])
    if widest["workers"] > 1:
        fixed = {"cpu_s": 0.0, "clips": 0}  # too few clips for a slope: fixed costs included
        if widest["clips"] >= 10:
            with tempfile.TemporaryDirectory() as tiny:
                fixed = build_run(write_synthetic_manual_dir(Path(tiny), 2), widest["workers"],
                                  build_config)
        parent_s = (widest["cpu_s"] - fixed["cpu_s"]) / (widest["clips"] - fixed["clips"])
        parent_s = max(parent_s, 1e-5)  # a noisy slope must not go negative
        result["parent_ms_per_clip"] = 1e3 * parent_s
        result["projected_vggsound_s"] = {
            str(cores): projected_build_s(worker_s_per_clip, parent_s, cores)
            for cores in PROJECTED_CORES}
    single = [run for run in runs if run["workers"] == 1]
    if single:
        result["speedup"] = {str(run["workers"]): run["clips_per_s"] / single[0]["clips_per_s"]
                             for run in runs if run["workers"] > 1}
    return result


