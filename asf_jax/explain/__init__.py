"""The explainer: which parts of a recording made the network choose a class, as audio.

Data flow: `objectives` (what is explained: a class's logit or probability, a contrast, a label
text) -> `saliency` (gradients, Grad-CAM or an optimised mask (`perturbation`) over the log-mel,
split by pathway) -> `masks` (cells to keep) -> `reconstruct` (salient audio and its complement)
-> `faithfulness` (how much the class score depends on them) -> `report` (figure, index page,
method table). `app` runs it over recordings; `cli` is the command line (`python -m
asf_jax.explain`, `scripts/explain.py`). `benchmark` scores methods where the answer is known:
`mixtures` (an event placed into other recordings), `localisation` (does the map point at it),
`sanity` (does the map depend on the model).
"""

from asf_jax.explain.masks import MaskSpec, make_mask
from asf_jax.explain.objectives import Target, make_target
from asf_jax.explain.saliency import (
    DEFAULT_SPEC,
    Saliency,
    SaliencyConfig,
    explain_audio,
    explain_logmel,
)

__all__ = ["DEFAULT_SPEC", "MaskSpec", "Saliency", "SaliencyConfig", "Target", "explain_audio",
           "explain_logmel", "make_mask", "make_target"]
