"""Benchmark the model (inference, train step) and the data path (dataset build, input pipeline).

    python -m scripts.benchmark [--only model|data|train] [--width 64] [--batch_sizes 8,32] \
        [--modes inference,train] [--arch slowfast] [--dtype float32|bfloat16] [--repeats 3] \
        [--peak_tflops T] [--vs_torch] [--build_clips 40] [--build_manual_dir DIR] \
        [--train_workers 0] [--json PATH] [--quick]

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
import dataclasses
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import absl.flags
import jax
import jax.numpy as jnp
import numpy as np
import optax
import threadpoolctl
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from asf_jax import audio
from asf_jax.datasets import extract, manual_dir
from asf_jax.datasets.reader import IndexView
from asf_jax.datasets.synthetic import SyntheticClip, write_manual_dir
from asf_jax.input_pipeline import (
    make_mesh,
    random_crop,
    shard_batch,
    train_loader,
)
from asf_jax.models.fold import fold_batchnorm
from asf_jax.models.slowfast import AudioResNet, ModelConfig, abstract_model, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.recipe import AudioRecipe, get_recipe
from asf_jax.specaugment import SpecAugmentConfig, default_specaugment_config, spec_augment
from asf_jax.steps import ModelGraphs, TrainState, split_variables
from asf_jax.steps import make_train_step as make_train_step_fn

DESIGN_FORWARD_GFLOP = 11.04  # DESIGN.md: 2 x 5.52 GMAC per clip, SlowFast R50 w=64
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
        return nnx.merge(graphdef, state, copy=True)(logmel).logits

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
# Data: log-mel front end, dataset build, training input pipeline.
# ------------------------------------------------------------------------------------------------

LOGMEL_GOAL_CLIPS_PER_CPU_S = 100.0  # one 10-s clip on one core
BUILD_SPEEDUP_GOAL = 1.8  # a build with 2 workers over one with 1
PIPELINE_GOAL_CLIPS_PER_CPU_S = 3000.0  # batch 32, SpecAugment, float16 records
PIPELINE_BATCH_SIZE = 32
VGGSOUND_CLIPS = 200_000
VGGSOUND_TRAIN_CLIPS = 183_730
PROJECTED_CORES = (8, 32, 96)
SYNTHETIC_CLASSES = ("dog barking", "church bell ringing")


def synthetic_clips(num_clips: int, seconds: float = CLIP_SECONDS) -> list[SyntheticClip]:
    """Noisy tones of two classes; every fifth clip is a test clip (its two views are built too)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    return [SyntheticClip(f"bench{i:05d}", 0, SYNTHETIC_CLASSES[i % 2],
                          "test" if i % 5 == 4 else "train",
                          0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
                          + 0.05 * rng.standard_normal(t.size))
            for i in range(num_clips)]


def write_synthetic_manual_dir(root: Path, num_clips: int) -> Path:
    return write_manual_dir(root, synthetic_clips(num_clips), SYNTHETIC_CLASSES)


def _calls_per_cpu_s(run: Callable[[], Any], calls: int) -> float:
    """`run` calls per CPU-second of this thread, after one warm-up call, BLAS on one thread."""
    with threadpoolctl.threadpool_limits(1):
        run()
        begin = time.thread_time()
        for _ in range(calls):
            run()
        return calls / (time.thread_time() - begin)


def logmel_throughput(recipe_name: str, calls: int = 21) -> dict[str, float]:
    """Log-mels of a 10-s clip per CPU-second: `audio.logmel`, and beside it the librosa
    computation it replaced (`stft`, `abs`, dense filterbank, `log`). The two alternate, call by
    call, and each rate is 1 / the median call, so a busy machine hurts both alike."""
    recipe = get_recipe(recipe_name)
    samples = synthetic_clips(1)[0].samples.astype(np.float32)

    def librosa_path() -> np.ndarray:
        magnitude = np.abs(audio.stft(samples, recipe))
        return np.log(audio.mel_filterbank(recipe) @ magnitude + recipe.log_offset).T

    runs = {"fast": lambda: audio.logmel(samples, recipe), "librosa": librosa_path}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    with threadpoolctl.threadpool_limits(1):
        for run in runs.values():  # warm-up: caches, plans, first-touch memory
            run()
        for _ in range(calls):
            for name, run in runs.items():
                begin = time.thread_time()
                run()
                seconds[name].append(time.thread_time() - begin)
    return {name: 1 / statistics.median(times) for name, times in seconds.items()}


def extraction_throughput(manual: Path, recipe_name: str) -> float:
    """Training clips per CPU-second of a build worker's work (read the WAV, log-mel) on one core.

    This is the builder's per-clip work without TFDS, transfer or worker start-up.
    """
    recipe = get_recipe(recipe_name)
    tasks = [extract.Task(manual_dir.Clip(path.stem, 0, "", "train", path, path.name), 0,
                          path.name, recipe, False)
             for path in sorted(manual.resolve().glob("*.wav"))]
    next_task = iter(tasks).__next__
    return _calls_per_cpu_s(lambda: extract.extract(next_task()), calls=len(tasks) - 1)


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


def _per_clip_us(run: Callable[[int], Any], clips: int) -> float:
    """Thread CPU microseconds per call of `run(i)`, i = 0..clips-1, after one warm-up call."""
    run(0)
    begin = time.thread_time()
    for i in range(clips):
        run(i)
    return 1e6 * (time.thread_time() - begin) / clips


def pipeline_stage_costs(source: Any, recipe: AudioRecipe, clips: int = 64) -> dict[str, float]:
    """CPU microseconds per clip of each stage: reading the record, decoding it, the random crop
    (with float16 -> float32), SpecAugment and the batch's stacking."""
    rng = np.random.default_rng(0)
    records = [source.data_source[i % len(source)] for i in range(clips)]
    features = source.dataset_info.features
    logmels = [features.deserialize_example_np(record)["logmel"] for record in records]
    crops = [random_crop(logmel, recipe.num_frames, rng) for logmel in logmels]
    batch = crops[:PIPELINE_BATCH_SIZE]
    config = SpecAugmentConfig()
    return {
        "read": _per_clip_us(lambda i: source.data_source[i % len(source)], clips),
        "decode": _per_clip_us(lambda i: features.deserialize_example_np(records[i]), clips),
        "crop": _per_clip_us(
            lambda i: random_crop(logmels[i], recipe.num_frames, rng), clips),
        "specaugment": _per_clip_us(lambda i: spec_augment(crops[i], rng, config), clips),
        "batch": _per_clip_us(lambda i: np.stack(batch), 8) / PIPELINE_BATCH_SIZE,
    }


def pipeline_throughput(source: Sequence[Mapping[str, Any]], recipe: AudioRecipe,
                        num_batches: int) -> float:
    """Training clips per CPU-second of `train_loader` on one core, SpecAugment on.

    The pipeline runs in the calling thread (no read threads), timed by its CPU time so that other
    processes do not distort the figure. The source has VGG-Sound's length (the shuffle's cost
    depends on it) but holds only a few distinct records, read over and over.
    """
    iterator = train_loader(
        IndexView(source, np.arange(VGGSOUND_TRAIN_CLIPS) % len(source)), recipe,
        global_batch_size=PIPELINE_BATCH_SIZE, seed=0, specaugment=SpecAugmentConfig(),
        read_threads=0, process_index=0, process_count=1)
    return PIPELINE_BATCH_SIZE * _calls_per_cpu_s(lambda: next(iterator), num_batches)


def benchmark_data(arch: str, build_clips: int, build_workers: list[int], pipeline_batches: int,
                   build_manual_dir: Path | None = None) -> dict[str, Any]:
    """Log-mel, feature extraction per core, builds with each worker count (of `build_clips`
    synthetic 10-s clips, or of `build_manual_dir`), and the training pipeline reading a float16
    dataset of 10-s clips."""
    from asf_jax.datasets import load_split
    from asf_jax.datasets.build import build

    build_config = "slow" if arch == "slow" else "slowfast"
    recipe = get_recipe(arch)
    logmel = logmel_throughput(build_config)
    print(f"  log-mel of a 10-s clip: {logmel['fast']:.0f} clips per CPU-s "
          f"(librosa: {logmel['librosa']:.0f})", flush=True)
    with tempfile.TemporaryDirectory() as manual, tempfile.TemporaryDirectory() as data_dir:
        synthetic = write_synthetic_manual_dir(Path(manual), build_clips)
        extraction = extraction_throughput(synthetic, build_config)
        print(f"  feature extraction: {extraction:.1f} clips per CPU-s", flush=True)
        builds = benchmark_build(build_manual_dir or synthetic, build_workers, build_config,
                                 1 / extraction)
        build(manual, data_dir, config=build_config, float16=True, workers=1, cache=False)
        source = load_split(data_dir, "train", f"{build_config}_float16").source
        stages = pipeline_stage_costs(source, recipe)
        pipeline = pipeline_throughput(source, recipe, pipeline_batches)
    print(f"  train pipeline: {pipeline:.0f} clips per CPU-s; per clip, us: "
          + ", ".join(f"{stage} {us:.0f}" for stage, us in stages.items()), flush=True)
    return {"logmel_clips_per_cpu_s": logmel["fast"],
            "librosa_logmel_clips_per_cpu_s": logmel["librosa"],
            "extraction_clips_per_cpu_s": extraction,
            "build_manual_dir": str(build_manual_dir) if build_manual_dir else "synthetic",
            "build": builds, "pipeline_clips_per_cpu_s": pipeline,
            "pipeline_stage_us_per_clip": stages, "pipeline_batch_size": PIPELINE_BATCH_SIZE}


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
    """The data figures, each with its goal (DESIGN: build on all cores, feed the accelerator)."""
    builds = data["build"]
    yield "| data | measured | goal |"
    yield "|---|---|---|"
    yield (f"| log-mel of a 10-s clip, 1 core | {data['logmel_clips_per_cpu_s']:.0f} clips per "
           f"CPU-s (librosa path: {data['librosa_logmel_clips_per_cpu_s']:.0f}) | "
           f"≥ {LOGMEL_GOAL_CLIPS_PER_CPU_S:.0f} |")
    yield (f"| build worker: read + log-mel of a 10-s WAV, 1 core | "
           f"{data['extraction_clips_per_cpu_s']:.0f} clips per CPU-s | - |")
    for run in builds["runs"]:
        speedup = builds.get("speedup", {}).get(str(run["workers"]))
        yield (f"| build, {run['workers']} worker(s), {run['clips']} clips "
               f"({data['build_manual_dir']}) | {run['clips_per_s']:.1f} clips/s"
               + (f", {speedup:.2f}x 1 worker | ≥ {BUILD_SPEEDUP_GOAL}x |" if speedup else
                  " | - |"))
    if "parent_ms_per_clip" in builds:
        parent = builds["parent_ms_per_clip"]
        projected = ", ".join(f"{cores} cores {seconds / 60:.0f} min" for cores, seconds
                              in builds["projected_vggsound_s"].items())
        yield (f"| build, writing process (serial) | {parent:.2f} ms CPU per clip: at most "
               f"{1e3 / parent:.0f} clips/s | - |")
        yield (f"| VGG-Sound build ({VGGSOUND_CLIPS:,} 10-s WAVs) projected | {projected} | "
               "linear in cores |")
    stages = ", ".join(f"{stage} {us:.0f}" for stage, us in
                       data["pipeline_stage_us_per_clip"].items())
    yield (f"| train pipeline, batch {data['pipeline_batch_size']}, SpecAugment, float16 "
           f"array_record | {data['pipeline_clips_per_cpu_s']:.0f} clips per CPU-s (us per clip: "
           f"{stages}) | ≥ {PIPELINE_GOAL_CLIPS_PER_CPU_S:.0f} |")


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


if __name__ == "__main__":
    sys.exit(main())
