"""End-to-end training benchmark: the real input pipeline feeding the trainer's jitted step."""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from asf_jax.benchmark.clips import write_synthetic_manual_dir
from asf_jax.benchmark.model import make_train_step
from asf_jax.benchmark.timing import time_steps
from asf_jax.input_pipeline import make_mesh, shard_batch, train_loader
from asf_jax.models.slowfast import ModelConfig, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.specaugment import default_specaugment_config


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

        times = time_steps(run, repeats)
    median = statistics.median(times)
    print(f"  end-to-end training, batch {batch_size}: {median:.3f} s/step", flush=True)
    return {"arch": config.arch, "width": config.width, "dtype": dtype, "batch_size": batch_size,
            "step_s_median": median, "clips_per_s": batch_size / median,
            "devices": jax.device_count(), "workers": workers}


