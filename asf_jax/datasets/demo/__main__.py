"""`python -m asf_jax.datasets.demo`: see asf_jax/datasets/demo/cli.py."""

from asf_jax.datasets.demo.cli import main

main()
