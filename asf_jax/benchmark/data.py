"""Data-path benchmark: the log-mel front end, a build worker's feature extraction, dataset builds
and the training input pipeline, each in CPU time on one core."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import threadpoolctl

from asf_jax import audio
from asf_jax.benchmark.clips import synthetic_clips, write_synthetic_manual_dir
from asf_jax.benchmark.dataset_build import benchmark_build
from asf_jax.benchmark.timing import calls_per_cpu_s, per_clip_us
from asf_jax.datasets import extract, manual_dir
from asf_jax.datasets.reader import IndexView
from asf_jax.input_pipeline import random_crop, train_loader
from asf_jax.recipe import AudioRecipe, get_recipe
from asf_jax.specaugment import SpecAugmentConfig, spec_augment

PIPELINE_BATCH_SIZE = 32
VGGSOUND_TRAIN_CLIPS = 183_730


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
    return calls_per_cpu_s(lambda: extract.extract(next_task()), calls=len(tasks) - 1)


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
        "read": per_clip_us(lambda i: source.data_source[i % len(source)], clips),
        "decode": per_clip_us(lambda i: features.deserialize_example_np(records[i]), clips),
        "crop": per_clip_us(
            lambda i: random_crop(logmels[i], recipe.num_frames, rng), clips),
        "specaugment": per_clip_us(lambda i: spec_augment(crops[i], rng, config), clips),
        "batch": per_clip_us(lambda i: np.stack(batch), 8) / PIPELINE_BATCH_SIZE,
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
    return PIPELINE_BATCH_SIZE * calls_per_cpu_s(lambda: next(iterator), num_batches)


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


