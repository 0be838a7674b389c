"""Synthesise the small VGG-Sound-style demo dataset: `python scripts/make_demo_dataset.py --help`.

Kept for existing commands; the generator is the package `asf_jax.datasets.demo` (also
`python -m asf_jax.datasets.demo` and `asf-jax-demo-dataset`).
"""

from asf_jax.datasets.demo.cli import main

if __name__ == "__main__":
    main()
