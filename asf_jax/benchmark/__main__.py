"""`python -m asf_jax.benchmark`: see asf_jax/benchmark/cli.py."""

import sys

from asf_jax.benchmark.cli import main

sys.exit(main())
