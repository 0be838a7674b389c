"""The explainer: which parts of a recording made the network choose a class, as audio.

Data flow: `saliency` (jax.grad of a class score w.r.t. the log-mel) -> `masks` (cells to keep)
-> `reconstruct` (salient audio and its complement) -> `faithfulness` (how much the class score
depends on them) -> `report` (figure, index page, method table). `app` runs it over recordings;
`cli` is the command line (`python -m asf_jax.explain`, `scripts/explain.py`).
"""

from asf_jax.explain.masks import MaskSpec, make_mask
from asf_jax.explain.saliency import Saliency, SaliencyConfig, explain_audio, explain_logmel

__all__ = ["MaskSpec", "Saliency", "SaliencyConfig", "explain_audio", "explain_logmel",
           "make_mask"]
