"""Slow-Fast R50 with the Label Embeddings Projection head on VGG-Sound (DESIGN.md).

As in the thesis: fine-tuned from a trained baseline for 100 epochs with gradient-norm clipping
at 1.0; the loss is (1 − λ)·CE + λ·MSE(ê, E[y]) against a frozen table E of class-name
embeddings (GloVe-6B-50d, shipped for VGG-Sound's 309 classes).

    python -m asf_jax.main --config configs/slowfast_lep.py --workdir ~/runs/slowfast_lep \\
        --config.data.data_dir ~/tensorflow_datasets \\
        --config.train.init_from=SLOWFAST_VGG.pyth   # or an asf_jax checkpoint / workdir

Fields to vary: `--config.lep.lam=0.25`, `--config.lep.embeddings=table.npz` (from
scripts/embed_labels.py; "" embeds the dataset's class names with the default encoder at start-up),
`--config.lep.held_out_classes=K` (zero-shot test on K classes kept out of training).
"""

from asf_jax.configs.common import base_config
from asf_jax.embeddings import VGGSOUND_GLOVE50


def get_config(arg: str | None = None):
    config = base_config()
    config.lep.enable = True
    config.lep.lam = 0.5
    config.lep.embeddings = str(VGGSOUND_GLOVE50)
    config.train.num_epochs = 100
    config.optim.clip_norm = 1.0
    return config
