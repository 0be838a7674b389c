"""Explain a prediction and hear what the network found salient: `python scripts/explain.py --help`.

The documented entry point; the explainer is the package `asf_jax.explain` (also
`python -m asf_jax.explain` and `asf-jax-explain`).
"""

import sys

from asf_jax.explain.cli import main

if __name__ == "__main__":
    sys.exit(main())
