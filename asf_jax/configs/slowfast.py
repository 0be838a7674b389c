"""Slow-Fast R50 on VGG-Sound: the reference recipe (DESIGN.md).

SGD Nesterov, LR 0.01 x0.1 at epochs 30 and 40, 50 epochs, weight decay 1e-4 (not on BatchNorm),
global batch 32, SpecAugment, precise BN over 200 batches, evaluation every 2 epochs.

    python -m asf_jax.main --config configs/slowfast.py --workdir ~/runs/slowfast \\
        --config.data.data_dir ~/tensorflow_datasets

Evaluate a checkpoint (asf_jax or a reference .pyth) only:

    python -m asf_jax.main --config configs/slowfast.py --workdir ~/runs/eval \\
        --config.train.enable=False --config.eval.checkpoint=SLOWFAST_VGG.pyth
"""

from asf_jax.configs.common import base_config


def get_config(arg: str | None = None):
    return base_config()
