"""Shared test settings: keep XLA compiles cheap and point at the shipped fixtures."""

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")

import jax  # noqa: E402

jax.config.update("jax_disable_most_optimizations", True)

DATA = Path(__file__).parent / "data"
