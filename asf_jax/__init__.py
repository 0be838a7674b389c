"""asf_jax: explainable Slow-Fast auditory streams in JAX.

`load_classifier(path)` loads a reference `.pyth` or an asf_jax checkpoint; `audio.logmel_views`
computes the network's input from a file or an array.
"""

from asf_jax import audio
from asf_jax.classifier import Classifier, load_classifier

__all__ = ["Classifier", "audio", "load_classifier"]
__version__ = "0.1.0"
