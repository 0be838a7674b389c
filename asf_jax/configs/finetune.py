"""Fine-tuning the published VGG-Sound Slow-Fast (SLOWFAST_VGG.pyth) onto your own, small dataset.

    python -m asf_jax.main --config finetune --workdir W --config.data.data_dir=D \
        --config.train.init_from=SLOWFAST_VGG.pyth

Every weight whose name and shape match is copied from `train.init_from` (a `.pyth`, an asf_jax
checkpoint or a training workdir); the classifier head (and an LEP head) for the new classes is
re-initialised, and the log lists what was. `--config finetune:small_data` starts from a model
trained with configs/small_data.py instead (its narrower network). Defaults: the heads at learning
rate 0.01 (cosine, 1 warm-up epoch), the backbone at 0.1x, BatchNorm statistics still updated,
mixup on half the batches, 15 epochs. Linear probe: `--config.finetune.freeze_backbone=True`;
tiny sets: `--config.finetune.freeze_batch_stats=True`.

Measured only on a proxy (SLOWFAST_VGG.pyth is not available here): small_data trained 30 epochs on
1811 real instrument notes (top-1 0.536 on sound fonts never trained on), fine-tuned 8 epochs
(168 steps) onto drums, tested on 140 one-shots of two kits never trained on; top-1 / mAP:
  from scratch, same budget   0.321 / 0.423
  full fine-tune              0.279 / 0.395
  backbone_lr_multiplier 0.1  0.336 / 0.391   (the default)
  + freeze_batch_stats        0.350 / 0.389
  frozen backbone (probe)     0.321 / 0.357
  linear baseline             0.314 / 0.474 (log-mel statistics of each clip's own frames)
The standard error is about 0.04: a lower backbone rate was no worse than full fine-tuning, and
no option beat training from scratch; the defaults are the usual transfer-learning ones.
"""

from asf_jax.configs import small_data
from asf_jax.configs.common import base_config


def get_config(arg: str | None = None):
    """small_data's schedule and regularisation; the reference network unless `small_data`."""
    if arg not in (None, "small_data"):
        raise ValueError(f"finetune:{arg}: the only variant is finetune:small_data")
    config = small_data.get_config()
    if arg is None:
        config.model = base_config().model  # the architecture of SLOWFAST_VGG.pyth
    config.train.init_from = "SLOWFAST_VGG.pyth"
    config.train.num_epochs = 15
    config.optim.learning_rate = 0.01
    config.optim.weight_decay = 1e-4
    config.optim.warmup_epochs = 1.0
    config.finetune.backbone_lr_multiplier = 0.1
    config.eval.every_epochs = 5
    return config
