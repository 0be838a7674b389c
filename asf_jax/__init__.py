"""asf_jax: explainable Slow-Fast auditory streams in JAX.

`load_classifier(path)` loads a reference `.pyth` or an asf_jax checkpoint; `audio.logmel_views`
computes the network's input from a file or an array. Both are imported on first use, so that
`import asf_jax` (and every command line) starts without paying for what it does not use.
"""

import importlib

__all__ = ["Classifier", "audio", "load_classifier"]
__version__ = "0.1.0"

_LAZY = {"Classifier": "asf_jax.classifier", "load_classifier": "asf_jax.classifier",
         "audio": "asf_jax.audio"}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'asf_jax' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if module.__name__ == f"asf_jax.{name}" else getattr(module, name)
