"""Label Embeddings Projection (LEP): a linear map of the network's output into a text space.

The thesis's head: `ê = Dense(D)(logits)`, trained with
`(1 − λ)·CE(logits, y) + λ·mean((ê − E[y])²)` against a frozen table `E` of class-name
embeddings (asf_jax/embeddings.py); predictions stay `softmax(logits)`. Because ê lives in the
text space, cosine similarity with any label's embedding also scores classes never trained on.
The table is a plain array passed to the loss, never a model variable, so no optimiser can move it.

Beyond the thesis (options, the thesis's choice the default): the projection can read the pooled
features instead of the logits (`ModelConfig.embedding_source`), and the embedding term can be the
cosine distance or a contrastive loss over the whole label table instead of the MSE (`LOSSES`).
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

LOSSES = ("mse", "cosine", "contrastive")
SOURCES = ("logits", "features")  # what the projection reads: the class logits or pooled features


class LEPHead(nnx.Module):
    """`Dense(D)`, no activation, as in the thesis (which projects the logits)."""

    def __init__(self, in_features: int, embedding_dim: int, *, rngs: nnx.Rngs):
        self.projection = nnx.Linear(in_features, embedding_dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """(batch, classes) logits or (batch, features) -> (batch, D) projected embedding."""
        return self.projection(x)


@dataclasses.dataclass(frozen=True)
class LEPMeta:
    """What an LEP checkpoint records besides its variables, to be used on its own: the frozen
    class-name table it was trained against (with its encoder), λ and the held-out classes."""

    embeddings: LabelEmbeddings
    lam: float
    held_out_classes: tuple[str, ...] = ()
    loss: str = "mse"
    temperature: float = 0.07  # of the contrastive loss

    def to_json(self) -> dict[str, Any]:
        return {"lam": self.lam, "held_out_classes": list(self.held_out_classes),
                "loss": self.loss, "temperature": self.temperature,
                "encoder": self.embeddings.encoder, "templates": list(self.embeddings.templates),
                "table": self.embeddings.table.tolist()}

    @classmethod
    def from_json(cls, values: dict[str, Any], class_names: Sequence[str]) -> LEPMeta:
        table = np.asarray(values["table"], np.float32)
        embeddings = LabelEmbeddings(table, tuple(class_names), values["encoder"],
                                     templates=tuple(values.get("templates", ())))
        return cls(embeddings, float(values["lam"]), tuple(values.get("held_out_classes", ())),
                   values.get("loss", "mse"), float(values.get("temperature", 0.07)))


def _unit(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def embedding_loss(projected: jax.Array, labels: jax.Array, table: jax.Array, kind: str = "mse",
                   temperature: float = 0.07, trained: jax.Array | None = None) -> jax.Array:
    """How far the projections ê (batch, D) are from their classes' embeddings E[y] (table
    (classes, D), integer labels (batch,)), averaged over the batch.

    `mse`: mean((ê − E[y])²) over batch and D (the thesis). `cosine`: 1 − cos(ê, E[y]); blind to
    the table's scale (unit-norm sentence embeddings make the MSE tiny). `contrastive`:
    cross-entropy of softmax(cos(ê, E)/temperature) with y — every class's text competes, as in
    CLIP; `trained` (classes,) bool leaves held-out classes out of that softmax, so their names
    are never seen in training.
    """
    table = jnp.asarray(table)
    if kind == "mse":
        return jnp.mean((projected - table[labels]) ** 2)
    if kind == "cosine":
        return jnp.mean(1.0 - jnp.sum(_unit(projected) * _unit(table[labels]), axis=-1))
    if kind == "contrastive":
        scores = _unit(projected) @ _unit(table).T / temperature  # (batch, classes)
        if trained is not None:
            scores = jnp.where(jnp.asarray(trained), scores, -jnp.inf)
        return optax.softmax_cross_entropy_with_integer_labels(scores, labels).mean()
    raise ValueError(f"unknown LEP loss {kind!r}; expected one of {LOSSES}")


def lep_loss(logits: jax.Array, projected: jax.Array, labels: jax.Array, table: jax.Array,
             lam: float | jax.Array, kind: str = "mse", temperature: float = 0.07,
             trained: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`(1 − λ)·CE + λ·embedding_loss`; aux holds both terms (`ce` and the loss's name).

    logits (batch, classes), projected (batch, D), integer labels (batch,), table (classes, D).
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    term = embedding_loss(projected, labels, table, kind, temperature, trained)
    return (1.0 - lam) * ce + lam * term, {"ce": ce, kind: term}


# ---------------------------------------------------------------------------------------------
# Open-vocabulary scoring
# ---------------------------------------------------------------------------------------------

def open_vocab_scores(projected: jax.Array, label_table: jax.Array) -> jax.Array:
    """Cosine similarity (batch, K) between projections (batch, D) and label embeddings (K, D)."""
    return _unit(jnp.asarray(projected)) @ _unit(jnp.asarray(label_table)).T


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


def classes_by_name(text: str, class_names: Sequence[str]) -> tuple[int, ...]:
    """Indices of the comma-separated class names in `text` (case-insensitive), sorted.

    Names may hold commas themselves ("playing steel guitar, slide guitar"): the text is split
    into the names it can be made of, and a part that is no class is an error.
    """
    lowered = {name.lower(): index for index, name in enumerate(class_names)}
    parts = text.split(",")

    def parse(start: int) -> list[int] | None:
        if start == len(parts):
            return []
        for stop in range(start + 1, len(parts) + 1):
            index = lowered.get(",".join(parts[start:stop]).strip().lower())
            rest = parse(stop) if index is not None else None
            if rest is not None:
                return [index, *rest]
        return None

    found = parse(0) if text.strip() else []
    if found is None:
        unknown = [p.strip() for p in parts if p.strip().lower() not in lowered]
        raise ValueError(f"held-out classes {text!r}: not class names: {unknown}")
    return tuple(sorted(set(found)))


def held_out_class_indices(num_classes: int, k: int, seed: int) -> tuple[int, ...]:
    """`k` classes (chosen by `seed`) to hold out of training for a zero-shot test, sorted."""
    if not 0 < k < num_classes:
        raise ValueError(f"held-out classes: k must be in 1..{num_classes - 1}, got {k}")
    return tuple(sorted(np.random.default_rng(seed).choice(num_classes, k, replace=False)
                        .tolist()))


def gzsl_accuracy(scores: np.ndarray, labels: np.ndarray, unseen: Sequence[int]
                  ) -> tuple[float, float, float]:
    """Generalised zero-shot accuracy (Xian et al., 2018): every class competes (`scores`
    (clips, classes)); per-class mean top-1 accuracy on the seen classes' clips and on the unseen
    classes' clips, and their harmonic mean. Classes without clips are left out of the means."""
    labels = np.asarray(labels)
    correct = np.asarray(scores).argmax(axis=1) == labels
    unseen_set = set(int(c) for c in unseen)

    def mean_class_accuracy(classes: set[int]) -> float:
        per_class = [correct[labels == c].mean() for c in sorted(classes) if np.any(labels == c)]
        return float(np.mean(per_class)) if per_class else float("nan")

    seen = mean_class_accuracy(set(np.unique(labels).tolist()) - unseen_set)
    unseen_accuracy = mean_class_accuracy(unseen_set)
    harmonic = (2 * seen * unseen_accuracy / (seen + unseen_accuracy)
                if seen + unseen_accuracy > 0 else 0.0)
    return seen, unseen_accuracy, harmonic


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
