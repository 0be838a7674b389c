"""The benchmark's markdown report: model, PyTorch comparison, data (each figure beside its goal)
and end-to-end training tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from asf_jax.benchmark.dataset_build import VGGSOUND_CLIPS
from asf_jax.benchmark.flops import TRAIN_FLOP_FACTOR

LOGMEL_GOAL_CLIPS_PER_CPU_S = 100.0  # one 10-s clip on one core
BUILD_SPEEDUP_GOAL = 1.8  # a build with 2 workers over one with 1
PIPELINE_GOAL_CLIPS_PER_CPU_S = 3000.0  # batch 32, SpecAugment, float16 records


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
                  f"{results['vs_torch'][0]['torch_version']} "
                  "(asf_jax/benchmark/torch_slowfast.py), steps alternating in one process:", "",
                  *torch_table(results["vs_torch"])]
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


