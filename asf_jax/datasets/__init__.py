"""Datasets of log-mel clips: the VGG-Sound TFDS builder and a TF-free reader."""

from asf_jax.datasets.reader import DatasetSplit, load_split

__all__ = ["DatasetSplit", "load_split"]
