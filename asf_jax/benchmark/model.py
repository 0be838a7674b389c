"""Model benchmark: the compiled inference and train steps on random batches, their step times,
throughput, FLOP rates and memory; with `vs_torch`, the same architecture in PyTorch beside them."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from asf_jax.benchmark.flops import (
    NUM_MELS,
    TRAIN_FLOP_FACTOR,
    forward_macs_per_clip,
    xla_flops,
    xla_memory_bytes,
)
from asf_jax.benchmark.timing import compile_timed, peak_memory, time_alternating, time_steps
from asf_jax.models.fold import fold_batchnorm
from asf_jax.models.slowfast import AudioResNet, ModelConfig, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.steps import ModelGraphs, TrainState, split_variables
from asf_jax.steps import make_train_step as make_train_step_fn

Batch = tuple[jax.Array, jax.Array]  # (logmel (batch, time, mel), labels (batch,))


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


Runner = tuple[Any, float, Callable[[], Any]]  # (executable, compile seconds, one step)


def inference_runner(model: AudioResNet, batch: Batch) -> Runner:
    """The compiled eval-mode forward pass."""
    step, state = make_inference_step(model)
    compiled, compile_s = compile_timed(step, state, batch[0])
    return compiled, compile_s, lambda: compiled(state, batch[0])


def train_runner(model: AudioResNet, batch: Batch) -> Runner:
    """The compiled forward + backward + SGD update; each step continues from the last."""
    step, state = make_train_step(model, sgd_with_decay(0.01))
    batch = {"logmel": batch[0], "label": batch[1]}
    compiled, compile_s = compile_timed(step, state, batch)
    holder = [state]

    def run() -> jax.Array:
        holder[0], metrics = compiled(holder[0], batch)
        return metrics["loss"]

    return compiled, compile_s, run


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
    run on, as XLA uses them all). The only place torch is imported, and only for `--vs_torch`."""
    from asf_jax.benchmark.torch_slowfast import TorchSteps

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
                times = time_steps(run, repeats)
            else:
                torch_run = torch_side.infer if mode == "inference" else torch_side.train
                begin = time.perf_counter()
                torch_run()
                first_step_s = time.perf_counter() - begin
                times, torch_times = time_alternating([run, torch_run], repeats)
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


