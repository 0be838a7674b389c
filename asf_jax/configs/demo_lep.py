"""The demo (configs/demo.py) with the Label Embeddings Projection head: a CPU-sized LEP run.

    python scripts/make_demo_dataset.py --out demo/manual
    python -m asf_jax.datasets.build --manual_dir demo/manual --data_dir demo/tfds
    python -m asf_jax.main --config configs/demo_lep.py --workdir demo/run_lep \\
        [--config.train.init_from=demo/run] [--config.lep.held_out_classes=2]

The class names are embedded with the default encoder (GloVe-6B-50d) at start-up.
"""

from asf_jax.configs import demo


def get_config(arg: str | None = None):
    config = demo.get_config()
    config.lep.enable = True
    config.lep.lam = 0.5
    config.optim.clip_norm = 1.0
    return config
