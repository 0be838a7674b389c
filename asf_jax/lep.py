"""Label Embeddings Projection (LEP): a linear map of the class logits into a text space.

The thesis's head: `ê = Dense(D)(logits)`, trained with
`(1 − λ)·CE(logits, y) + λ·mean((ê − E[y])²)` against a frozen table `E` of class-name
embeddings (asf_jax/embeddings.py); predictions stay `softmax(logits)`. Because ê lives in the
text space, cosine similarity with any label's embedding also scores classes never trained on.
The table is a plain array passed to the loss, never a model variable, so no optimiser can move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


class LEPHead(nnx.Module):
    """`Dense(D)` of the logits, no activation, as in the thesis."""

    def __init__(self, num_classes: int, embedding_dim: int, *, rngs: nnx.Rngs):
        self.projection = nnx.Linear(num_classes, embedding_dim, rngs=rngs)

    def __call__(self, logits: jax.Array) -> jax.Array:
        """(batch, classes) logits -> (batch, D) projected embedding."""
        return self.projection(logits)


class LEPClassifierModel(nnx.Module):
    """A classifier backbone (log-mel -> logits) with the LEP head on its logits."""

    def __init__(self, backbone: nnx.Module, head: LEPHead):
        self.backbone = backbone
        self.head = head

    def __call__(self, logmel: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(batch, frames, mel) -> ((batch, classes) logits, (batch, D) projection)."""
        logits = self.backbone(logmel)
        return logits, self.head(logits)


def lep_loss(logits: jax.Array, projected: jax.Array, labels: jax.Array, table: jax.Array,
             lam: float | jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`(1 − λ)·CE + λ·MSE(ê, E[y])`, the MSE averaged over batch and D; aux holds both terms.

    logits (batch, classes), projected (batch, D), integer labels (batch,), table (classes, D).
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    mse = jnp.mean((projected - jnp.asarray(table)[labels]) ** 2)
    return (1.0 - lam) * ce + lam * mse, {"ce": ce, "mse": mse}


# ---------------------------------------------------------------------------------------------
# Open-vocabulary scoring
# ---------------------------------------------------------------------------------------------

def open_vocab_scores(projected: jax.Array, label_table: jax.Array) -> jax.Array:
    """Cosine similarity (batch, K) between projections (batch, D) and label embeddings (K, D)."""
    def unit(x: jax.Array) -> jax.Array:
        return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    return unit(projected) @ unit(jnp.asarray(label_table)).T


def rank_labels(projected: jax.Array, label_table: jax.Array,
                k: int = 5) -> tuple[jax.Array, jax.Array]:
    """The `k` best labels per example by cosine score: (scores, indices), each (batch, k)."""
    return jax.lax.top_k(open_vocab_scores(projected, label_table), min(k, len(label_table)))


def split_held_out_classes(class_names: Sequence[str], k: int,
                           seed: int) -> tuple[list[str], list[str]]:
    """Hold `k` classes out of training for a zero-shot test; both lists keep the input order."""
    if not 0 < k < len(class_names):
        raise ValueError(f"k must be in 1..{len(class_names) - 1}, got {k}")
    held = set(np.random.default_rng(seed).choice(len(class_names), k, replace=False).tolist())
    return ([n for i, n in enumerate(class_names) if i not in held],
            [n for i, n in enumerate(class_names) if i in held])


class HeldOutAccuracy(NamedTuple):
    """Zero-shot top-1/top-5 accuracy over K held-out labels, and chance (1/K, min(5, K)/K)."""

    top1: float
    top5: float
    chance_top1: float
    chance_top5: float


def held_out_topk_accuracy(projected: jax.Array, labels: jax.Array,
                           held_out_table: jax.Array) -> HeldOutAccuracy:
    """Zero-shot accuracy over K held-out labels: `labels` (batch,) index `held_out_table`."""
    num_labels = len(held_out_table)
    _, top = rank_labels(projected, held_out_table, 5)
    hits = top == jnp.asarray(labels)[:, None]
    return HeldOutAccuracy(float(hits[:, 0].mean()), float(hits.any(axis=1).mean()),
                           1.0 / num_labels, min(5, num_labels) / num_labels)
