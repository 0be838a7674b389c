"""Benchmark the model (inference, train step) and the data path (dataset build, input pipeline).

    python -m asf_jax.benchmark [--only model|data|train] [--width 64] [--batch_sizes 8,32] \
        [--modes inference,train] [--arch slowfast] [--dtype float32|bfloat16] [--repeats 3] \
        [--peak_tflops T] [--vs_torch] [--build_clips 40] [--build_manual_dir DIR] \
        [--train_workers 0] [--json PATH] [--quick]

Runs on whatever JAX backend is current (CPU, GPU or TPU) and prints a markdown table at the end.
`--vs_torch` times the same architecture in PyTorch (asf_jax/benchmark/torch_slowfast.py) on
the same device, its steps alternating with asf_jax's; scripts/gpu_benchmark.sh runs the GPU set.
(`asf-jax-benchmark` and `python -m scripts.benchmark` are the same command.)
Step times are medians over `--repeats` steps after one warm-up step; compile time is the AOT
`lower` + `compile` time. Peak memory is the device's `peak_bytes_in_use` where the backend reports
it, else the process's peak RSS; both are peaks over the whole run so far, so the executable's own
footprint from XLA's memory analysis is given beside them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import absl.flags
import jax

from asf_jax.benchmark.data import benchmark_data
from asf_jax.benchmark.model import benchmark_model
from asf_jax.benchmark.report import report
from asf_jax.benchmark.training import benchmark_training
from asf_jax.models.slowfast import ModelConfig
from asf_jax.recipe import get_recipe


def environment() -> dict[str, Any]:
    """What the numbers were measured on, and how busy the machine was."""
    device = jax.local_devices()[0]
    return {"backend": jax.default_backend(), "device_kind": device.device_kind,
            "device_count": jax.device_count(), "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0], "jax_version": jax.__version__,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["model", "data", "train"],
                        help="run only the model, the data or the end-to-end training part "
                             "(default: all three)")
    parser.add_argument("--arch", default="slowfast", choices=["slowfast", "slow", "fast"],
                        help="network and its audio recipe (default: slowfast)")
    parser.add_argument("--width", type=int, default=64, help="model width w (default: 64)")
    parser.add_argument("--batch_sizes", default="8,32",
                        help="comma-separated batch sizes to time (default: 8,32)")
    parser.add_argument("--modes", default="inference,train",
                        help="comma-separated model steps to time: inference, train "
                             "(default: both)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="compute dtype; parameters stay float32 (default: float32)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed steps after one warm-up step; the median is reported")
    parser.add_argument("--peak_tflops", type=float,
                        help="the device's peak TFLOP/s for this dtype, to report model FLOP "
                             "utilisation (MFU); omitted: no MFU")
    parser.add_argument("--build_clips", type=int, default=40,
                        help="synthetic 10-s clips for the dataset-build benchmark (default: 40)")
    parser.add_argument("--build_workers", default=f"1,{os.cpu_count() or 1}",
                        help="comma-separated worker counts, one dataset build each "
                             "(default: 1 and all cores)")
    parser.add_argument("--build_manual_dir", type=Path,
                        help="time the builds on this manual dir (e.g. the demo set) instead of "
                             "the --build_clips synthetic clips")
    parser.add_argument("--pipeline_batches", type=int, default=50,
                        help="batches of 32 timed for the training-pipeline benchmark")
    parser.add_argument("--train_workers", type=int, default=0,
                        help="grain worker processes feeding the end-to-end training benchmark "
                             "(default: 0, the pipeline runs in this process)")
    parser.add_argument("--vs_torch", action="store_true",
                        help="also time the same architecture in PyTorch (needs torch installed; "
                             "asf_jax does not): its steps alternate with asf_jax's on the same "
                             "device, batch and threads, and the table gives asf_jax/PyTorch "
                             "ratios of the medians")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run, timings meaningless: width 8 with one block per stage, "
                             "batch 2, 1 repeat, XLA optimisations off, 4 build clips "
                             "with 1 and 2 workers, 2 pipeline batches")
    args = parser.parse_args(argv)
    if args.vs_torch and importlib.util.find_spec("torch") is None:
        parser.error("--vs_torch needs PyTorch in this environment (e.g. pip install torch); "
                     "asf_jax itself never imports it")
    if args.quick:
        args.width, args.batch_sizes, args.repeats = 8, "2", 1
        args.build_clips, args.build_workers, args.pipeline_batches = 4, "1,2", 2
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.modes = tuple(args.modes.split(","))
    if not set(args.modes) <= {"inference", "train"}:
        parser.error(f"--modes takes inference and/or train, got {','.join(args.modes)}")
    args.build_workers = [int(w) for w in args.build_workers.split(",")]
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs the requested parts; returns every number (what `--json` writes)."""
    if args.quick:
        jax.config.update("jax_disable_most_optimizations", True)
    results: dict[str, Any] = {"environment": environment(), "quick": args.quick}
    config = ModelConfig(arch=args.arch, width=args.width,
                         num_frames=get_recipe(args.arch).num_frames,
                         stage_blocks=(1, 1, 1, 1) if args.quick else None)
    if args.only in (None, "model"):
        print(f"model: {config.arch} w={config.width} {args.dtype}", flush=True)
        results["model"], comparisons = benchmark_model(
            config, args.dtype, args.batch_sizes, args.repeats, args.peak_tflops, args.vs_torch,
            args.modes)
        if comparisons:
            results["vs_torch"] = comparisons
    if args.only in (None, "data"):
        print("data:", flush=True)
        results["data"] = benchmark_data(args.arch, args.build_clips, args.build_workers,
                                         args.pipeline_batches, args.build_manual_dir)
    if args.only in (None, "train"):
        print("end-to-end training:", flush=True)
        results["train"] = benchmark_training(config, args.dtype, max(args.batch_sizes),
                                              args.build_clips, args.repeats, args.train_workers)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.train_workers:
        absl.flags.FLAGS(sys.argv[:1])  # grain's worker processes read the absl flags
    results = run(args)
    print("\n" + report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0

