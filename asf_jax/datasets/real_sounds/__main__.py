"""`python -m asf_jax.datasets.real_sounds`: see the package docstring."""

from asf_jax.datasets.real_sounds.cli import main

main()
