"""asf_jax: explainable Slow-Fast auditory streams in JAX.

`load_classifier(path)` loads a reference `.pyth` or an asf_jax checkpoint; `audio.logmel_views`
computes the network's input from a file or an array.

The classifier (and with it JAX) is imported on first use, so that tools that only need audio or
the dataset (the dataset build and its worker processes) start without it.
"""

from typing import Any

from asf_jax import audio

__all__ = ["Classifier", "audio", "load_classifier"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("Classifier", "load_classifier"):
        from asf_jax import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'asf_jax' has no attribute {name!r}")
