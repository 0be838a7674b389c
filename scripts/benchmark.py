"""Benchmark the model (inference, train step) and the data path (dataset build, input pipeline).

    python -m scripts.benchmark [--only model|data|train] [--width 64] [--batch_sizes 8,32] \
        [--modes inference,train] [--arch slowfast] [--dtype float32|bfloat16] [--repeats 3] \
        [--peak_tflops T] [--vs_torch] [--build_clips 40] [--train_workers 0] [--json PATH] \
        [--quick]

Runs on whatever JAX backend is current (CPU, GPU or TPU) and prints a markdown table at the end.
`--vs_torch` times the same architecture in PyTorch (scripts/torch_slowfast.py) on the same
device, its steps alternating with asf_jax's; scripts/gpu_benchmark.sh runs the GPU set.
Step times are medians over `--repeats` steps after one warm-up step; compile time is the AOT
`lower` + `compile` time. Peak memory is the device's `peak_bytes_in_use` where the backend reports
it, else the process's peak RSS; both are peaks over the whole run so far, so the executable's own
footprint from XLA's memory analysis is given beside them.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import absl.flags
import jax
import jax.numpy as jnp
import numpy as np
import optax
import soundfile
import threadpoolctl
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from asf_jax.datasets import extract, manual_dir
from asf_jax.input_pipeline import (
    make_mesh,
    measure_train_pipeline_throughput,
    shard_batch,
    train_loader,
)
from asf_jax.models.fold import fold_batchnorm
from asf_jax.models.slowfast import AudioResNet, ModelConfig, abstract_model, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.recipe import get_recipe
from asf_jax.specaugment import default_specaugment_config
from asf_jax.steps import ModelGraphs, TrainState, split_variables
from asf_jax.steps import make_train_step as make_train_step_fn

DESIGN_FORWARD_GFLOP = 11.04  # DESIGN.md: 2 x 5.52 GMAC per clip, SlowFast R50 w=64
REFERENCE_BUILD_CLIPS_PER_CORE_S = 79.0
TARGET_PIPELINE_CLIPS_PER_CORE_S = 2000.0
TRAIN_FLOP_FACTOR = 3  # forward + backward ~ 3 x forward
NUM_MELS = 128
CLIP_SECONDS = 10.0

Batch = tuple[jax.Array, jax.Array]


# ------------------------------------------------------------------------------------------------
# Model: FLOP counting, jitted steps, timing.
# ------------------------------------------------------------------------------------------------


def _jaxpr_macs(jaxpr: jax.extend.core.Jaxpr) -> int:
    """Multiply-accumulates of the convolutions and matmuls in a jaxpr (nested jaxprs included)."""
    macs = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, *spatial) positions
            per_output = int(np.prod([rhs[i] for i in spec[1:]]))
            macs += int(np.prod(eqn.outvars[0].aval.shape)) * per_output
        elif name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            contracted = int(np.prod([lhs[i] for i in lhs_contract]))
            macs += int(np.prod(eqn.outvars[0].aval.shape)) * contracted
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    macs += _jaxpr_macs(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    macs += _jaxpr_macs(sub)
    return macs


def forward_macs_per_clip(config: ModelConfig) -> int:
    """Forward multiply-accumulates of one clip, counted from the traced model (no compile)."""
    model = abstract_model(config)
    model.eval()
    graphdef, state = nnx.split(model)
    logmel = jax.ShapeDtypeStruct((1, config.num_frames, NUM_MELS), jnp.float32)
    forward = jax.make_jaxpr(lambda state, x: nnx.merge(graphdef, state)(x))
    return _jaxpr_macs(forward(state, logmel).jaxpr)


def _random_batch(config: ModelConfig, batch_size: int) -> Batch:
    rng = np.random.default_rng(0)
    logmel = rng.standard_normal((batch_size, config.num_frames, NUM_MELS), np.float32)
    labels = rng.integers(0, config.num_classes, batch_size)
    return jax.device_put(logmel), jax.device_put(labels)


def make_inference_step(model: AudioResNet) -> tuple[Callable[..., jax.Array], Any]:
    """A jitted pure `(state, logmel) -> logits` in eval mode, BatchNorm folded into the
    convolutions (3% faster on the CPU), and the folded model's state."""
    graphdef, state = nnx.split(fold_batchnorm(model))

    def infer(state: Any, logmel: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state, copy=True)(logmel)

    return jax.jit(infer), state


def make_train_step(model: AudioResNet, optimizer: optax.GradientTransformation
                    ) -> tuple[Callable[..., Any], TrainState]:
    """The trainer's own jitted step (BatchNorm in training mode, state donated) and its state."""
    graphs = ModelGraphs.of(model)
    params, batch_stats = split_variables(model)
    state = TrainState(step=jnp.asarray(0, jnp.int32), params=params, batch_stats=batch_stats,
                       opt_state=optimizer.init(params))
    step = make_train_step_fn(graphs, optimizer, optax.constant_schedule(0.01),
                              jax.random.key(0))
    return jax.jit(step, donate_argnums=0), state


def _compile(step: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """AOT-compiles `step` for `args`; returns the executable and the lower + compile seconds."""
    begin = time.perf_counter()
    compiled = step.lower(*args).compile()
    return compiled, time.perf_counter() - begin


def _time_alternating(runs: list[Callable[[], Any]], repeats: int) -> list[list[float]]:
    """Seconds of `repeats` steps of each run, taking turns after one warm-up step each, so
    that every run sees the same machine load; each step is waited for."""
    for run in runs:
        jax.block_until_ready(run())
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, record in zip(runs, times, strict=True):
            begin = time.perf_counter()
            jax.block_until_ready(run())
            record.append(time.perf_counter() - begin)
    return times


def _time_steps(run_step: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds of `repeats` steps after one warm-up, each waited for with block_until_ready."""
    return _time_alternating([run_step], repeats)[0]


Runner = tuple[Any, float, Callable[[], Any]]  # (executable, compile seconds, one step)


def inference_runner(model: AudioResNet, batch: Batch) -> Runner:
    """The compiled eval-mode forward pass."""
    step, state = make_inference_step(model)
    compiled, compile_s = _compile(step, state, batch[0])
    return compiled, compile_s, lambda: compiled(state, batch[0])


def train_runner(model: AudioResNet, batch: Batch) -> Runner:
    """The compiled forward + backward + SGD update; each step continues from the last."""
    step, state = make_train_step(model, sgd_with_decay(0.01))
    batch = {"logmel": batch[0], "label": batch[1]}
    compiled, compile_s = _compile(step, state, batch)
    holder = [state]

    def run() -> jax.Array:
        holder[0], metrics = compiled(holder[0], batch)
        return metrics["loss"]

    return compiled, compile_s, run


def xla_flops(compiled: Any) -> float | None:
    """FLOPs of one call by XLA's cost analysis, where the backend provides it."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    flops = (analysis or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def xla_memory_bytes(compiled: Any) -> int | None:
    """Arguments + outputs + temporaries of the executable (minus donated aliases), per XLA."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return (stats.argument_size_in_bytes + stats.output_size_in_bytes
            + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


def peak_memory() -> tuple[int, str]:
    """Peak memory so far and its source: the device's allocator, else the process's RSS."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak_kib * 1024, "process peak RSS"


def model_result(mode: str, config: ModelConfig, dtype: str, batch_size: int, compiled: Any,
                 compile_s: float, times: list[float], forward_macs: int,
                 peak_tflops: float | None) -> dict[str, Any]:
    """One configuration's numbers: times, throughput, FLOP rates and utilisation, memory."""
    step_s = statistics.median(times)
    factor = TRAIN_FLOP_FACTOR if mode == "train" else 1
    counted_flops = 2 * forward_macs * factor * batch_size
    xla = xla_flops(compiled)
    peak, peak_source = peak_memory()
    result = {
        "mode": mode, "arch": config.arch, "width": config.width, "dtype": dtype,
        "batch_size": batch_size, "compile_s": compile_s, "step_s_median": step_s,
        "step_s_all": times, "clips_per_s": batch_size / step_s,
        "gflop_per_clip_counted": counted_flops / batch_size / 1e9,
        "tflops_counted": counted_flops / step_s / 1e12,
        "gflop_per_clip_xla": xla / batch_size / 1e9 if xla else None,
        "tflops_xla": xla / step_s / 1e12 if xla else None,
        "xla_memory_bytes": xla_memory_bytes(compiled),
        "peak_memory_bytes": peak, "peak_memory_source": peak_source,
    }
    if peak_tflops:
        result["mfu_counted"] = result["tflops_counted"] / peak_tflops
        result["mfu_xla"] = result["tflops_xla"] / peak_tflops if xla else None
    return result


def torch_steps(config: ModelConfig, dtype: str, batch_size: int) -> Any:
    """The PyTorch model's steps on the device JAX uses (GPU, or the CPU cores this process may
    run on, as XLA uses them all)."""
    from scripts.torch_slowfast import TorchSteps

    device = "cuda" if jax.default_backend() == "gpu" else "cpu"
    return TorchSteps(config, batch_size, dtype, device, threads=len(os.sched_getaffinity(0)))


def torch_result(mode: str, jax_result: dict[str, Any], first_step_s: float,
                 times: list[float], peak_memory_bytes: int | None) -> dict[str, Any]:
    """PyTorch's numbers beside asf_jax's for one configuration; the ratio is of medians."""
    step_s = statistics.median(times)
    return {"mode": mode, "batch_size": jax_result["batch_size"], "dtype": jax_result["dtype"],
            "torch_version": sys.modules["torch"].__version__,
            "torch_threads": sys.modules["torch"].get_num_threads(),
            "torch_first_step_s": first_step_s, "torch_step_s_median": step_s,
            "torch_step_s_all": times, "torch_clips_per_s": jax_result["batch_size"] / step_s,
            "torch_peak_memory_bytes": peak_memory_bytes,
            "jax_step_s_median": jax_result["step_s_median"],
            "jax_compile_s": jax_result["compile_s"],
            "ratio_jax_to_torch": jax_result["step_s_median"] / step_s}


def benchmark_model(config: ModelConfig, dtype: str, batch_sizes: list[int], repeats: int,
                    peak_tflops: float | None, vs_torch: bool = False,
                    modes: tuple[str, ...] = ("inference", "train")
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inference then train step (of `modes`) for each batch size, smallest first; with
    `vs_torch`, the PyTorch model's steps alternate with asf_jax's. Returns (asf_jax results,
    comparisons)."""
    compute_dtype = jnp.bfloat16 if dtype == "bfloat16" else None
    forward_macs = forward_macs_per_clip(config)
    results, comparisons = [], []
    for batch_size in sorted(batch_sizes):
        batch = _random_batch(config, batch_size)
        torch_side = torch_steps(config, dtype, batch_size) if vs_torch else None
        for mode in modes:
            runner = inference_runner if mode == "inference" else train_runner
            compiled, compile_s, run = runner(create_model(config, dtype=compute_dtype), batch)
            if torch_side is None:
                times = _time_steps(run, repeats)
            else:
                torch_run = torch_side.infer if mode == "inference" else torch_side.train
                begin = time.perf_counter()
                torch_run()
                first_step_s = time.perf_counter() - begin
                times, torch_times = _time_alternating([run, torch_run], repeats)
            results.append(model_result(mode, config, dtype, batch_size, compiled, compile_s,
                                        times, forward_macs, peak_tflops))
            line = (f"  {mode} batch {batch_size}: {statistics.median(times):.3f} s/step, "
                    f"compile {compile_s:.1f} s")
            if torch_side is not None:
                comparisons.append(torch_result(mode, results[-1], first_step_s, torch_times,
                                                torch_side.peak_memory_bytes()))
                line += (f"; PyTorch {statistics.median(torch_times):.3f} s/step, ratio "
                         f"{comparisons[-1]['ratio_jax_to_torch']:.2f}")
            print(line, flush=True)
    return results, comparisons


# ------------------------------------------------------------------------------------------------
# Data: dataset build and training input pipeline.
# ------------------------------------------------------------------------------------------------


def write_synthetic_manual_dir(root: Path, num_clips: int, sample_rate: int = 16000) -> None:
    """`num_clips` 10-s noisy-tone WAVs, a two-class classes.txt and a vggsound.csv in `root`."""
    classes = ["dog barking", "church bell ringing"]
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    rng = np.random.default_rng(0)
    seconds = np.arange(int(CLIP_SECONDS * sample_rate)) / sample_rate
    with open(root / "vggsound.csv", "w", newline="") as f:
        writer = csv.writer(f)
        for i in range(num_clips):
            youtube_id = f"bench{i:05d}"
            tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * seconds)
            audio = tone + 0.05 * rng.standard_normal(seconds.size)
            soundfile.write(root / f"{youtube_id}_000000.wav", audio, sample_rate,
                            subtype="PCM_16")
            writer.writerow([youtube_id, 0, classes[i % 2], "test" if i % 5 == 4 else "train"])


def extraction_throughput(manual: Path, recipe_name: str) -> float:
    """Clips per CPU-second of one clip's feature extraction (read + log-mels) on one core.

    This is the builder's per-clip work without TFDS or worker start-up; it is timed by this
    thread's CPU time, after one warm-up clip, with BLAS limited to one thread.
    """
    root = manual.resolve()
    recipe = get_recipe(recipe_name)
    tasks = [extract.Task(manual_dir.Clip(path.stem, 0, "", "train", path, path.name), 0,
                          path.name, recipe, False) for path in sorted(root.glob("*.wav"))]
    with threadpoolctl.threadpool_limits(1):
        extract.extract(tasks[0])
        begin = time.thread_time()
        for task in tasks:
            extract.extract(task)
        return len(tasks) / (time.thread_time() - begin)


def build_throughput(manual: Path, workers: int, build_config: str) -> dict[str, Any]:
    """Wall-clock clips/s of one fresh build with `workers` processes (TFDS, start-up included)."""
    from asf_jax.datasets.build import build

    with tempfile.TemporaryDirectory() as data_dir:
        begin = time.perf_counter()
        builder = build(str(manual), data_dir, config=build_config, workers=workers)
        seconds = time.perf_counter() - begin
    clips = sum(builder.report.kept.values())
    return {"workers": workers, "clips": clips, "seconds": seconds,
            "clips_per_s": clips / seconds, "clips_per_s_per_worker": clips / seconds / workers}


def benchmark_data(arch: str, build_clips: int, build_workers: list[int],
                   pipeline_batches: int) -> dict[str, Any]:
    """Feature extraction per core, dataset builds with each worker count, training pipeline."""
    build_config = "slow" if arch == "slow" else "slowfast"
    with tempfile.TemporaryDirectory() as manual:
        write_synthetic_manual_dir(Path(manual), build_clips)
        extraction = extraction_throughput(Path(manual), build_config)
        print(f"  feature extraction: {extraction:.1f} clips per CPU-s", flush=True)
        builds = [build_throughput(Path(manual), workers, build_config)
                  for workers in build_workers]
    for result in builds:
        print(f"  build, {result['workers']} worker(s): {result['clips_per_s']:.1f} clips/s",
              flush=True)
    pipeline = measure_train_pipeline_throughput(get_recipe(arch), batch_size=32,
                                                 num_batches=pipeline_batches)
    print(f"  train pipeline: {pipeline:.0f} clips per CPU-s", flush=True)
    return {"extraction_clips_per_cpu_s": extraction, "build": builds,
            "reference_build_clips_per_core_s": REFERENCE_BUILD_CLIPS_PER_CORE_S,
            "pipeline_clips_per_cpu_s": pipeline, "pipeline_batch_size": 32,
            "target_pipeline_clips_per_core_s": TARGET_PIPELINE_CLIPS_PER_CORE_S}


def benchmark_training(config: ModelConfig, dtype: str, batch_size: int, build_clips: int,
                       repeats: int, workers: int = 0) -> dict[str, Any]:
    """End-to-end training clips/s: the real input pipeline (built dataset, random crops,
    SpecAugment, sharding onto the mesh; `workers` grain processes, 0: in this process)
    feeding the trainer's jitted step."""
    from asf_jax.datasets import load_split
    from asf_jax.datasets.build import build

    build_config = "slow" if config.arch == "slow" else "slowfast"
    with tempfile.TemporaryDirectory() as manual, tempfile.TemporaryDirectory() as data_dir:
        write_synthetic_manual_dir(Path(manual), build_clips)
        build(manual, data_dir, config=build_config, workers=1)
        split = load_split(data_dir, "train", build_config)
        config = dataclasses.replace(config, num_classes=len(split.class_names))
        model = create_model(config, dtype=jnp.bfloat16 if dtype == "bfloat16" else None)
        step, state = make_train_step(model, sgd_with_decay(0.01))
        mesh = make_mesh()
        state = jax.device_put(state, NamedSharding(mesh, PartitionSpec()))
        loader = train_loader(split.source, split.recipe, global_batch_size=batch_size, seed=0,
                              specaugment=default_specaugment_config(), worker_count=workers)
        holder = [state]

        def run() -> jax.Array:
            holder[0], metrics = step(holder[0], shard_batch(next(loader), mesh))
            return metrics["loss"]

        times = _time_steps(run, repeats)
    median = statistics.median(times)
    print(f"  end-to-end training, batch {batch_size}: {median:.3f} s/step", flush=True)
    return {"arch": config.arch, "width": config.width, "dtype": dtype, "batch_size": batch_size,
            "step_s_median": median, "clips_per_s": batch_size / median,
            "devices": jax.device_count(), "workers": workers}


# ------------------------------------------------------------------------------------------------
# Report.
# ------------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def model_table(results: list[dict[str, Any]]) -> Iterator[str]:
    yield ("| mode | arch | w | dtype | batch | compile s | step s (median) | clips/s | "
           "TFLOP/s counted | TFLOP/s XLA | MFU counted | MFU XLA | XLA mem GiB | peak mem GiB |")
    yield "|" + "---|" * 14
    for r in results:
        yield (f"| {r['mode']} | {r['arch']} | {r['width']} | {r['dtype']} | {r['batch_size']} | "
               f"{r['compile_s']:.1f} | {r['step_s_median']:.3f} | {r['clips_per_s']:.2f} | "
               f"{_fmt(r['tflops_counted'])} | {_fmt(r['tflops_xla'])} | "
               f"{_fmt(r.get('mfu_counted'), '.1%')} | {_fmt(r.get('mfu_xla'), '.1%')} | "
               f"{_fmt(r['xla_memory_bytes'] and r['xla_memory_bytes'] / 2**30, '.2f')} | "
               f"{r['peak_memory_bytes'] / 2**30:.2f} |")


def torch_table(results: list[dict[str, Any]]) -> Iterator[str]:
    yield ("| mode | dtype | batch | asf_jax s (median) | PyTorch s (median) | asf_jax / PyTorch | "
           "asf_jax compile s | PyTorch first step s | PyTorch threads | PyTorch peak mem GiB |")
    yield "|" + "---|" * 10
    for r in results:
        memory = r["torch_peak_memory_bytes"]
        yield (f"| {r['mode']} | {r['dtype']} | {r['batch_size']} | {r['jax_step_s_median']:.3f} | "
               f"{r['torch_step_s_median']:.3f} | {r['ratio_jax_to_torch']:.2f} | "
               f"{r['jax_compile_s']:.1f} | {r['torch_first_step_s']:.2f} | "
               f"{r['torch_threads']} | {_fmt(memory and memory / 2**30, '.2f')} |")


def data_table(data: dict[str, Any]) -> Iterator[str]:
    reference = f"{data['reference_build_clips_per_core_s']:.0f}"
    yield "| data | clips/s (wall) | clips/s per worker or per CPU-s | reference/target per core |"
    yield "|---|---|---|---|"
    yield (f"| feature extraction, 1 core | - | {data['extraction_clips_per_cpu_s']:.1f} per CPU-s "
           f"| {reference} |")
    for b in data["build"]:
        yield (f"| build, {b['workers']} worker(s), {b['clips']} clips | {b['clips_per_s']:.1f} | "
               f"{b['clips_per_s_per_worker']:.1f} per worker | {reference} |")
    yield (f"| train pipeline, batch {data['pipeline_batch_size']}, SpecAugment | - | "
           f"{data['pipeline_clips_per_cpu_s']:.0f} per CPU-s | "
           f"{data['target_pipeline_clips_per_core_s']:.0f} |")


def environment() -> dict[str, Any]:
    """What the numbers were measured on, and how busy the machine was."""
    device = jax.local_devices()[0]
    return {"backend": jax.default_backend(), "device_kind": device.device_kind,
            "device_count": jax.device_count(), "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0], "jax_version": jax.__version__,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def report(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [f"## Benchmark: {env['backend']} ({env['device_kind']}), {env['cpu_count']} CPUs, "
             f"load average {env['load_average_1m']:.1f} at start"]
    if "model" in results:
        counted = results["model"][0]["gflop_per_clip_counted"]
        lines += ["", f"Model: {counted:.2f} GFLOP per clip forward, counted from the traced "
                  f"convolutions and matmuls (train step = {TRAIN_FLOP_FACTOR}x forward); "
                  f"memory peaks are cumulative over the run "
                  f"({results['model'][0]['peak_memory_source']}).", "",
                  *model_table(results["model"])]
    if "vs_torch" in results:
        lines += ["", f"Side by side with the same architecture in PyTorch "
                  f"{results['vs_torch'][0]['torch_version']} (scripts/torch_slowfast.py), steps "
                  "alternating in one process:", "", *torch_table(results["vs_torch"])]
    if "data" in results:
        lines += ["", *data_table(results["data"])]
    if "train" in results:
        t = results["train"]
        lines += ["", "| end-to-end training (input included) | w | dtype | batch | devices | "
                  "grain workers | step s (median) | clips/s |", "|" + "---|" * 8,
                  f"| {t['arch']} | {t['width']} | {t['dtype']} | {t['batch_size']} | "
                  f"{t['devices']} | {t['workers']} | {t['step_s_median']:.3f} | "
                  f"{t['clips_per_s']:.2f} |"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Command line.
# ------------------------------------------------------------------------------------------------


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
                             "with 1 worker, 2 pipeline batches")
    args = parser.parse_args(argv)
    if args.vs_torch and importlib.util.find_spec("torch") is None:
        parser.error("--vs_torch needs PyTorch in this environment (e.g. pip install torch); "
                     "asf_jax itself never imports it")
    if args.quick:
        args.width, args.batch_sizes, args.repeats = 8, "2", 1
        args.build_clips, args.build_workers, args.pipeline_batches = 4, "1", 2
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
                                         args.pipeline_batches)
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


if __name__ == "__main__":
    sys.exit(main())
