"""From scratch on a few thousand clips, on a CPU: a narrow Slow-Fast trained in minutes.

    python -m asf_jax.main --config small_data --workdir W --config.data.data_dir=D

Same recipe and network family as the reference, sized for ~1-3k clips and 2 CPU cores: width 16,
one bottleneck per stage, a cosine schedule with warm-up, stronger weight decay and dropout, mixup
on half the batches, and precise BatchNorm statistics over the whole training set. MEASURED_BELOW
"""

from asf_jax.configs.common import base_config


def get_config(arg: str | None = None):
    config = base_config()
    config.model.width = 16
    config.model.stage_blocks = (1, 1, 1, 1)
    config.model.dropout_rate = 0.3
    config.train.num_epochs = 30
    config.train.global_batch_size = 32
    config.train.log_every_steps = 20
    config.train.checkpoint_every_steps = 200
    config.train.precise_bn_batches = 25
    config.optim.learning_rate = 0.05
    config.optim.weight_decay = 5e-4
    config.optim.schedule = "cosine"
    config.optim.warmup_epochs = 2.0
    config.mixup.rate = 0.5
    config.mixup.alpha = 0.2
    config.eval.every_epochs = 10
    config.eval.global_batch_size = 32
    return config
