"""`python -m asf_jax.explain`: see asf_jax/explain/cli.py."""

import sys

from asf_jax.explain.cli import main

sys.exit(main())
