"""Timing and memory primitives shared by the benchmarks: compile time, median step times
with runs taking turns, CPU time per call on one core, peak memory."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import jax
import threadpoolctl


def compile_timed(step: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """AOT-compiles `step` for `args`; returns the executable and the lower + compile seconds."""
    begin = time.perf_counter()
    compiled = step.lower(*args).compile()
    return compiled, time.perf_counter() - begin


def time_alternating(runs: list[Callable[[], Any]], repeats: int) -> list[list[float]]:
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


def time_steps(run_step: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds of `repeats` steps after one warm-up, each waited for with block_until_ready."""
    return time_alternating([run_step], repeats)[0]


def peak_memory() -> tuple[int, str]:
    """Peak memory so far and its source: the device's allocator, else the process's RSS."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak_kib * 1024, "process peak RSS"


def calls_per_cpu_s(run: Callable[[], Any], calls: int) -> float:
    """`run` calls per CPU-second of this thread, after one warm-up call, BLAS on one thread."""
    with threadpoolctl.threadpool_limits(1):
        run()
        begin = time.thread_time()
        for _ in range(calls):
            run()
        return calls / (time.thread_time() - begin)


def per_clip_us(run: Callable[[int], Any], clips: int) -> float:
    """Thread CPU microseconds per call of `run(i)`, i = 0..clips-1, after one warm-up call."""
    run(0)
    begin = time.thread_time()
    for i in range(clips):
        run(i)
    return 1e6 * (time.thread_time() - begin) / clips


