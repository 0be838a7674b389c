"""Slow-only R50 on VGG-Sound: its own log-mel (hop 40 ms, 128 frames), width 64.

Build the dataset with `--config slow` first, then:

    python -m asf_jax.main --config configs/slow.py --workdir ~/runs/slow \\
        --config.data.data_dir ~/tensorflow_datasets
"""

from asf_jax.configs.common import base_config


def get_config(arg: str | None = None):
    config = base_config()
    config.data.config = "slow"
    config.model.arch = "slow"
    config.model.width = 64
    return config
