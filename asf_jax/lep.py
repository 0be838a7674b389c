"""Label Embeddings Projection (LEP): a linear map of the class logits into a text space.

The thesis's head: `ê = Dense(D)(logits)`, trained with
`(1 − λ)·CE(logits, y) + λ·mean((ê − E[y])²)` against a frozen table `E` of class-name
embeddings (asf_jax/embeddings.py); predictions stay `softmax(logits)`. Because ê lives in the
text space, cosine similarity with any label's embedding also scores classes never trained on.
The table is a plain array passed to the loss, never a model variable, so no optimiser can move it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from asf_jax.embeddings import (
    DEFAULT_ENCODER,
    LabelEmbeddings,
    embed_labels,
    load_label_embeddings,
)


class LEPHead(nnx.Module):
    """`Dense(D)` of the logits, no activation, as in the thesis."""

    def __init__(self, num_classes: int, embedding_dim: int, *, rngs: nnx.Rngs):
        self.projection = nnx.Linear(num_classes, embedding_dim, rngs=rngs)

    def __call__(self, logits: jax.Array) -> jax.Array:
        """(batch, classes) logits -> (batch, D) projected embedding."""
        return self.projection(logits)


@dataclasses.dataclass(frozen=True)
class LEPMeta:
    """What an LEP checkpoint records besides its variables, to be used on its own: the frozen
    class-name table it was trained against (with its encoder), λ and the held-out classes."""

    embeddings: LabelEmbeddings
    lam: float
    held_out_classes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"lam": self.lam, "held_out_classes": list(self.held_out_classes),
                "encoder": self.embeddings.encoder, "templates": list(self.embeddings.templates),
                "table": self.embeddings.table.tolist()}

    @classmethod
    def from_json(cls, values: dict[str, Any], class_names: Sequence[str]) -> LEPMeta:
        table = np.asarray(values["table"], np.float32)
        embeddings = LabelEmbeddings(table, tuple(class_names), values["encoder"],
                                     templates=tuple(values.get("templates", ())))
        return cls(embeddings, float(values["lam"]), tuple(values.get("held_out_classes", ())))


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


def label_table(class_names: Sequence[str], path: str = "", encoder: str = DEFAULT_ENCODER,
                templates: Sequence[str] = ()) -> LabelEmbeddings:
    """The LEP target table: the file at `path` (its class order checked), else the class names
    embedded with `encoder` (through `templates`, for a sentence encoder)."""
    if path:
        return load_label_embeddings(Path(path).expanduser(), class_names)
    return embed_labels(class_names, encoder, tuple(templates) or None)


def held_out_class_indices(num_classes: int, k: int, seed: int) -> tuple[int, ...]:
    """`k` classes (chosen by `seed`) to hold out of training for a zero-shot test, sorted."""
    if not 0 < k < num_classes:
        raise ValueError(f"held-out classes: k must be in 1..{num_classes - 1}, got {k}")
    return tuple(sorted(np.random.default_rng(seed).choice(num_classes, k, replace=False)
                        .tolist()))


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
