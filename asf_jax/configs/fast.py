"""Fast-only R50 on VGG-Sound: the SlowFast input (512 frames), width 8 as the reference.

    python -m asf_jax.main --config configs/fast.py --workdir ~/runs/fast \\
        --config.data.data_dir ~/tensorflow_datasets
"""

from asf_jax.configs.common import base_config


def get_config(arg: str | None = None):
    config = base_config()
    config.model.arch = "fast"
    config.model.width = 8
    return config
