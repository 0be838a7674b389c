"""K-fold cross-validation of a config on a dataset built with folds: `--help` for the flags.

The documented entry point; the logic is `asf_jax.cross_validate` (also `asf-jax-cross-validate`).
"""

from asf_jax.cross_validate import run

if __name__ == "__main__":
    run()
