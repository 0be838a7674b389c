"""The subprocess side of test_sharding.py: train steps on fake CPU devices, results to .npz files.

The device count is fixed when JAX starts, so each configuration runs in its own process, started
from the repository root with `XLA_FLAGS=--xla_force_host_platform_device_count=N`:

    python -m tests.sharding_worker --data_dir TFDS --out DIR [--compare_one_device]
            [--coordinator_address HOST:PORT --num_processes P --process_id I]

It trains a few steps as the trainer does (the real input pipeline gives each process its share of
every global batch, `shard_batch` makes global arrays of them, the state is replicated and donated),
optionally as one of P processes joined by `jax.distributed`, and writes DIR/process<I>.npz.
`--compare_one_device` first runs one step on a fixed random batch twice, sharded over all devices
and on a 1-device mesh, and writes both results and the arrays' placement to DIR/step.npz.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from asf_jax import input_pipeline
from asf_jax.datasets import load_split
from asf_jax.models.slowfast import ModelConfig, create_model
from asf_jax.optim import sgd_with_decay
from asf_jax.specaugment import default_specaugment_config
from asf_jax.steps import ModelGraphs, TrainState, make_train_step, replicated, split_variables

LEARNING_RATE = 0.05
GLOBAL_BATCH = 8
NUM_CLASSES = 3
NUM_FRAMES = 128  # the "slow" recipe of the tiny dataset
# Slow-only: the same layers as the two-pathway model at half the compile time.
TINY_MODEL = ModelConfig(arch="slow", width=8, stage_blocks=(1, 1, 1, 1), num_classes=NUM_CLASSES,
                         num_frames=NUM_FRAMES, dropout_rate=0.0)

TrainStep = Callable[[TrainState, dict[str, jax.Array]], tuple[TrainState, dict[str, jax.Array]]]


def tiny_setup() -> tuple[TrainStep, TrainState]:
    """The jitted, state-donating train step of the test model and its step-0 state on the host.

    The host copy is put on a mesh for every run, so donating the device copy leaves it intact.
    """
    model = create_model(TINY_MODEL, seed=0)
    tx = sgd_with_decay(LEARNING_RATE)
    params, batch_stats = split_variables(model)
    state = TrainState(step=jnp.asarray(0, jnp.int32), params=params, batch_stats=batch_stats,
                       opt_state=tx.init(params))
    step = make_train_step(ModelGraphs.of(model), tx, optax.constant_schedule(LEARNING_RATE),
                           jax.random.key(0))
    return jax.jit(step, donate_argnums=0), jax.device_get(state)


def local_value(array: jax.Array) -> np.ndarray:
    """A replicated array's value, read from this process's first copy."""
    return np.asarray(array.addressable_data(0))


def flat_variables(state: TrainState, prefix: str) -> dict[str, np.ndarray]:
    """Parameters and BatchNorm statistics as {"<prefix>/params/stem/conv/kernel": array}."""
    tree = {"params": state.params, "batch_stats": state.batch_stats}
    return {f"{prefix}/{jax.tree_util.keystr(path, simple=True, separator='/')}":
            np.asarray(leaf if isinstance(leaf, np.ndarray) else local_value(leaf))
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def placement(state: TrainState, batch: dict[str, jax.Array], prefix: str
              ) -> dict[str, np.ndarray]:
    """Where a step's input batch and output state live."""
    leaves = jax.tree.leaves(state)
    logmel = batch["logmel"]
    return {
        f"{prefix}/batch_devices": np.asarray(len(logmel.sharding.device_set)),
        f"{prefix}/batch_shard_rows": np.asarray(
            [shard.data.shape[0] for shard in logmel.addressable_shards]),
        f"{prefix}/state_replicated": np.asarray(
            all(leaf.sharding.is_fully_replicated for leaf in leaves)),
        f"{prefix}/state_devices": np.asarray(
            [len(leaf.sharding.device_set) for leaf in leaves]),
    }


def compare_one_device(train_step: TrainStep, state: TrainState, out: Path) -> None:
    """One step from the same state on the same batch: on a mesh of all devices, then of one."""
    rng = np.random.default_rng(0)
    batch = {"logmel": rng.standard_normal((GLOBAL_BATCH, NUM_FRAMES, 128), np.float32),
             "label": rng.integers(0, NUM_CLASSES, GLOBAL_BATCH).astype(np.int32)}
    meshes = {"all": input_pipeline.make_mesh(),
              "one": Mesh(np.array(jax.devices()[:1]), (input_pipeline.DATA_AXIS,))}
    results = flat_variables(state, "initial")
    for name, mesh in meshes.items():
        sharded = input_pipeline.shard_batch(batch, mesh)
        new_state, metrics = train_step(jax.device_put(state, replicated(mesh)), sharded)
        results[f"{name}/loss"] = local_value(metrics["loss"])
        results |= flat_variables(new_state, name) | placement(new_state, sharded, name)
    np.savez(out / "step.npz", **results)


def train(train_step: TrainStep, state: TrainState, data_dir: Path, num_steps: int, out: Path
          ) -> None:
    """`num_steps` steps on this process's share of the tiny dataset's global batches."""
    split = load_split(data_dir, "train", "slow")
    loader = input_pipeline.train_loader(
        split.source, split.recipe, global_batch_size=GLOBAL_BATCH, seed=0,
        specaugment=default_specaugment_config(), read_threads=1,
        process_index=jax.process_index(), process_count=jax.process_count())
    mesh = input_pipeline.make_mesh()
    state = jax.device_put(state, replicated(mesh))
    losses = []
    for _ in range(num_steps):
        state, metrics = train_step(state, input_pipeline.shard_batch(next(loader), mesh))
        losses.append(local_value(metrics["loss"]))
    results = {"losses": np.asarray(losses), "process_count": np.asarray(jax.process_count()),
               "device_count": np.asarray(jax.device_count()),
               "local_device_count": np.asarray(jax.local_device_count())}
    results |= flat_variables(state, "final")
    np.savez(out / f"process{jax.process_index()}.npz", **results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num_steps", type=int, default=3)
    parser.add_argument("--compare_one_device", action="store_true")
    parser.add_argument("--coordinator_address")
    parser.add_argument("--num_processes", type=int, default=1)
    parser.add_argument("--process_id", type=int, default=0)
    args = parser.parse_args()
    jax.config.update("jax_disable_most_optimizations", True)  # compile time dominates
    if args.coordinator_address:
        jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
    train_step, state = tiny_setup()
    if args.compare_one_device:
        compare_one_device(train_step, state, args.out)
    train(train_step, state, args.data_dir, args.num_steps, args.out)
    if args.coordinator_address:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
