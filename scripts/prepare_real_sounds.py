"""Kept for old command lines: the tool is `python -m asf_jax.datasets.real_sounds`."""

from asf_jax.datasets.real_sounds.cli import main

if __name__ == "__main__":
    main()
