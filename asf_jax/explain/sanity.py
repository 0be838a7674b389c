"""Sanity checks for saliency maps (Adebayo et al., "Sanity checks for saliency maps", NeurIPS
2018): cascading model-parameter randomisation.

The learned weights are replaced by freshly initialised ones from the top of the network down
(head, stage 5, 4, 3, 2, stem; each lateral goes with the stage it feeds), cumulatively, and the
map of the same clip and target is computed again. A map that still looks like the original
(high Spearman rank correlation) does not depend on what the model learned. Convolution and dense
weights are re-drawn from the model's initialisers; BatchNorm scales, offsets and statistics are
kept, so activations stay in range (re-initialised BatchNorm would zero every residual branch).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np
import scipy.stats
from flax import nnx

from asf_jax.classifier import Classifier
from asf_jax.models.slowfast import ModelConfig, create_model

CASCADE = ("head", "stage5", "stage4", "stage3", "stage2", "stem")


def part_of(path: tuple) -> str | None:
    """The cascade step of a state leaf at a pytree `path` (None: kept, e.g. BatchNorm)."""
    names = [str(p.key if hasattr(p, "key") else p.idx) for p in path
             if hasattr(p, "key") or hasattr(p, "idx")]
    if names[-1] not in ("kernel", "bias") or "bn" in names:
        return None
    if names[0] in ("head", "lep_head"):
        return "head"
    if names[0] == "laterals":  # lateral k feeds stage k + 2
        return f"stage{int(names[1]) + 2}"
    if names[0] == "pathways":
        return "stem" if names[2] == "stem" else f"stage{int(names[3]) + 2}"
    return None


@functools.lru_cache(maxsize=2)
def _fresh_state(config: ModelConfig, seed: int) -> nnx.State:
    """The variables of a freshly initialised model (made once per config and seed)."""
    return nnx.split(create_model(config, seed=seed))[1]


def randomised(classifier: Classifier, steps: int, seed: int = 1) -> Classifier:
    """`classifier` with the first `steps` parts of `CASCADE` re-initialised."""
    chosen = set(CASCADE[:steps])
    fresh = _fresh_state(classifier.config, seed)

    def pick(path: tuple, trained: jax.Array, new: jax.Array) -> jax.Array:
        return new if part_of(path) in chosen else trained

    state = jax.tree_util.tree_map_with_path(pick, classifier.state, fresh)
    return Classifier(nnx.merge(classifier.graphdef, state), classifier.recipe,
                      classifier.class_names, source=f"{classifier.source} (randomised)",
                      lep=classifier.lep, max_batch=classifier.max_batch)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (0 when either is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(scipy.stats.spearmanr(a, b).statistic)


def cascading_randomisation(classifier: Classifier, explain: Callable[[Classifier], np.ndarray],
                            seed: int = 1) -> dict[str, float]:
    """Rank correlation with the original map after each cumulative step of `CASCADE`.

    `explain(classifier)` returns the (frames, mel) map of the fixed clip and target.
    """
    original = explain(classifier)
    return {part: rank_correlation(original, explain(randomised(classifier, step, seed)))
            for step, part in enumerate(CASCADE, 1)}
