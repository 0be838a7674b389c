"""Datasets of log-mel clips: the VGG-Sound and custom TFDS builders and a TF-free reader.

The reader (and with it TFDS) is imported on first use: the build's worker processes import
`asf_jax.datasets.extract` only.
"""

from typing import Any

__all__ = ["DatasetSplit", "load_split"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from asf_jax.datasets import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'asf_jax.datasets' has no attribute {name!r}")
