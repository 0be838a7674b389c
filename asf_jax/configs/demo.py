"""A narrow Slow-Fast on the synthetic demo dataset: trains in a few minutes on a laptop CPU.

`make demo` runs the whole thing. By hand:

    python scripts/make_demo_dataset.py --out demo/manual
    python -m asf_jax.datasets.build --manual_dir demo/manual --data_dir demo/tfds
    python -m asf_jax.main --config configs/demo.py --workdir demo/run

Same recipe and network family as the reference, but width 8, one bottleneck per stage, a shorter
schedule with a cosine decay, and precise BN over the whole (small) training set.
"""

from asf_jax.configs.common import base_config


def get_config(arg: str | None = None):
    config = base_config()
    config.data.data_dir = "demo/tfds"
    config.model.width = 8
    config.model.stage_blocks = (1, 1, 1, 1)
    config.model.dropout_rate = 0.2
    config.train.num_epochs = 9
    config.train.global_batch_size = 16
    config.train.log_every_steps = 10
    config.train.checkpoint_every_steps = 100
    config.train.precise_bn_batches = 15
    config.optim.learning_rate = 0.05
    config.optim.schedule = "cosine"
    config.optim.warmup_epochs = 1.0
    config.eval.every_epochs = 3
    config.eval.global_batch_size = 16
    return config
