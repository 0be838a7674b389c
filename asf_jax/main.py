"""Train and evaluate: `python -m asf_jax.main --config slowfast --workdir DIR` (asf-jax-train).

`--config` takes a packaged config's name (slowfast, slowfast_lep, slow, fast, demo, demo_lep) or a
config file's path (`configs/slowfast.py` as the documentation writes it works too). Every config
field can be overridden, e.g. `--config.train.global_batch_size=64`. On a TPU pod or a
multi-node GPU cluster, run the same command on every host with `--distributed` (or give the
coordinator explicitly); `jax.distributed.initialize` then joins the processes.
"""

from __future__ import annotations

import logging
import sys

import jax
from absl import app, flags

from asf_jax import configs, train
from asf_jax.compile_cache import enable_compilation_cache

FLAGS = flags.FLAGS
configs.define_config_flag()
flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard logs and "
                    "evaluation results; rerunning with the same workdir resumes.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with the cluster's "
                  "auto-detected settings (TPU pods, SLURM, ...).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for a multi-process "
                    "run without auto-detection (implies --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator_address).")
flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(logging.Filter):
    """Orbax logs every file it writes at INFO; keep its warnings and errors only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "/orbax/" not in record.pathname


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.coordinator_address:
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                   FLAGS.process_id)
    elif FLAGS.distributed:
        jax.distributed.initialize()
    enable_compilation_cache()
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("absl").addFilter(_QuietLibraries())
    logging.info("Process %d of %d; %d local / %d global devices (%s).", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count(),
                 jax.default_backend())
    try:
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except (train.NonFiniteLossError, ValueError, FileNotFoundError) as error:  # ConfigError,
        # CheckpointError and bad data are ValueErrors whose messages say what to fix
        logging.error("%s", error)
        sys.exit(1)


def run() -> None:
    """Console-script entry point."""
    configs.run_app(main, __name__)


if __name__ == "__main__":
    run()
