"""Baseline vs. Label Embeddings Projection at several λ, one table: `--help` for the flags.

The documented entry point; the logic is `asf_jax.lep_ablation` (also `asf-jax-lep-ablation`).
"""

from asf_jax.lep_ablation import run

if __name__ == "__main__":
    run()
