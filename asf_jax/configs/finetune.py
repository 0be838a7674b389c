"""Fine-tuning the published VGG-Sound Slow-Fast (SLOWFAST_VGG.pyth) onto your own, small dataset.

    python -m asf_jax.main --config finetune --workdir W --config.data.data_dir=D \
        --config.train.init_from=SLOWFAST_VGG.pyth

Every weight whose name and shape match is copied from `train.init_from` (a `.pyth`, an asf_jax
checkpoint or a training workdir); the classifier head (and an LEP head) for the new classes is
re-initialised, and the log lists what was. `--config finetune:small_data` starts from a model
trained with configs/small_data.py instead (its narrower network). MEASURED_BELOW
"""

from asf_jax.configs import small_data
from asf_jax.configs.common import base_config


def get_config(arg: str | None = None):
    config = small_data.get_config() if arg == "small_data" else base_config()
    if arg not in (None, "small_data"):
        raise ValueError(f"finetune:{arg}: the only variant is finetune:small_data")
    config.train.init_from = "SLOWFAST_VGG.pyth"
    config.train.num_epochs = 15
    config.train.global_batch_size = 32
    config.train.log_every_steps = 20
    config.train.checkpoint_every_steps = 200
    config.train.precise_bn_batches = 25
    config.optim.learning_rate = 0.01
    config.optim.weight_decay = 1e-4
    config.optim.schedule = "cosine"
    config.optim.warmup_epochs = 1.0
    config.finetune.backbone_lr_multiplier = 0.1
    config.mixup.rate = 0.5
    config.mixup.alpha = 0.2
    config.eval.every_epochs = 5
    config.eval.global_batch_size = 32
    return config
