"""Benchmark the model and the data path: `python -m scripts.benchmark --help` for the flags.

Kept for existing commands; the benchmark is the package `asf_jax.benchmark` (also
`python -m asf_jax.benchmark` and `asf-jax-benchmark`).
"""

import sys

from asf_jax.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
