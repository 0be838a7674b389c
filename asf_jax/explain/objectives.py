"""What an explanation explains: one scalar per window, from the classes or from a label text.

A `Target` names the explained classes (their scores are summed) or a label text, and optionally
what it is contrasted with. The score of a class target is its softmax probability, logit,
log-probability, or margin (the target's logit minus the runner-up's, or minus the contrast
class's: a class-contrastive explanation). A text target (models with a Label Embeddings
Projection head) is scored by the cosine between the projection and the text's embedding, made
the way the model's class-name table was (`embed_texts_like`), so any text can be explained, also
one never trained; a contrast text is subtracted likewise.
"""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asf_jax.classifier import Classifier
from asf_jax.embeddings import embed_texts_like
from asf_jax.models.slowfast import ModelOutputs

SCORES = ("prob", "logit", "logprob", "margin")


@dataclasses.dataclass(frozen=True)
class Target:
    """A resolved target: classes (summed) or a text, and an optional contrast of the same kind."""

    classes: tuple[int, ...] = ()
    text: str | None = None
    contrast_classes: tuple[int, ...] = ()
    contrast_text: str | None = None

    def __post_init__(self) -> None:
        if bool(self.classes) == (self.text is not None):
            raise ValueError("a target is either classes or a text")
        if self.text is None and self.contrast_text is not None:
            raise ValueError("a class target is contrasted with classes, not a text")
        if self.text is not None and self.contrast_classes:
            raise ValueError("a text target is contrasted with a text")

    def describe(self, class_names: list[str]) -> str:
        """E.g. `dog` , `"dog barking"` or `dog vs cat`."""
        def names(classes: tuple[int, ...], text: str | None) -> str:
            return f'"{text}"' if text is not None else " + ".join(class_names[c] for c in classes)
        main = names(self.classes, self.text)
        if self.contrast_classes or self.contrast_text is not None:
            return f"{main} vs {names(self.contrast_classes, self.contrast_text)}"
        return main


class TargetArrays(NamedTuple):
    """The arrays a jitted score reads; None fields are absent (a static difference under jit).

    `classes` None means: the `top_k` most probable classes, chosen from the same forward pass.
    """

    classes: jax.Array | None = None  # (classes,) 1 for each explained class
    contrast: jax.Array | None = None  # (classes,) 1 for each contrast class
    text: jax.Array | None = None  # (D,) unit embedding of the explained text
    contrast_text: jax.Array | None = None  # (D,) unit embedding of the contrast text


def resolve_class(class_names: list[str], target: str | int) -> int:
    """A class index or name (case-insensitive); a clear error with close names otherwise."""
    if isinstance(target, int) or re.fullmatch(r"\d+", str(target)):
        index = int(target)
        if not 0 <= index < len(class_names):
            raise ValueError(f"class index {index} out of range 0..{len(class_names) - 1}")
        return index
    lowered = [name.lower() for name in class_names]
    if target.lower() not in lowered:
        close = [n for n in class_names if target.lower() in n.lower()][:5]
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"unknown class {target!r}{hint}")
    return lowered.index(target.lower())


def make_target(class_names: list[str], target: str | int | None = None,
                text: str | None = None, contrast: str | int | None = None) -> Target | None:
    """The Target of the command-line choices; None: explain the predicted class(es)."""
    if text is not None:
        return Target(text=text, contrast_text=None if contrast is None else str(contrast))
    if target is None:
        if contrast is not None:
            raise ValueError("--contrast needs --target or --target_text")
        return None
    return Target((resolve_class(class_names, target),),
                  contrast_classes=() if contrast is None else (resolve_class(class_names,
                                                                              contrast),))


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def target_arrays(classifier: Classifier, target: Target | None) -> TargetArrays:
    """The arrays of `target` for `classifier`; text targets need its LEP head."""
    if target is None:
        return TargetArrays()
    num_classes = len(classifier.class_names)
    if target.text is None:
        def one_hot(classes: tuple[int, ...]) -> jax.Array | None:
            return jnp.asarray(np.eye(num_classes, dtype=np.float32)[list(classes)].sum(axis=0)
                               ) if classes else None
        return TargetArrays(one_hot(target.classes), one_hot(target.contrast_classes))
    table = classifier.label_embeddings
    if table is None:
        raise ValueError(f"a text target needs a model with a Label Embeddings Projection head; "
                         f"{classifier.source or 'this classifier'} has none")
    texts = [target.text] + ([target.contrast_text] if target.contrast_text is not None else [])
    vectors = [jnp.asarray(_unit(v)) for v in embed_texts_like(table, texts).table]
    return TargetArrays(text=vectors[0], contrast_text=vectors[1] if len(vectors) > 1 else None)


def _cosine(projection: jax.Array, unit_text: jax.Array) -> jax.Array:
    norm = jnp.maximum(jnp.linalg.norm(projection, axis=-1), 1e-12)
    return projection @ unit_text / norm


def _log_sum(log_probabilities: jax.Array, weights: jax.Array) -> jax.Array:
    """log Σ_{weights > 0} p: the log-probability of a set of classes."""
    return jax.nn.logsumexp(jnp.where(weights > 0, log_probabilities, -jnp.inf), axis=-1)


def target_score(outputs: ModelOutputs, arrays: TargetArrays, score: str) -> jax.Array:
    """(batch,) score of the target in a batch of model outputs (`arrays.classes` given)."""
    if arrays.text is not None:
        if outputs.projection is None:
            raise ValueError("a text target needs the model's LEP projection")
        value = _cosine(outputs.projection, arrays.text)
        if arrays.contrast_text is not None:
            value = value - _cosine(outputs.projection, arrays.contrast_text)
        return value
    logits, weights, contrast = outputs.logits, arrays.classes, arrays.contrast
    if score == "prob":
        probabilities = jax.nn.softmax(logits, axis=-1)
        value = probabilities @ weights
        return value if contrast is None else value - probabilities @ contrast
    if score == "logprob":
        log_probabilities = jax.nn.log_softmax(logits, axis=-1)
        value = _log_sum(log_probabilities, weights)
        return value if contrast is None else value - _log_sum(log_probabilities, contrast)
    if score == "logit":
        return logits @ weights - (0.0 if contrast is None else logits @ contrast)
    if score == "margin":  # against the contrast, else the best class outside the target
        other = (logits @ contrast if contrast is not None
                 else jnp.where(weights > 0, -jnp.inf, logits).max(axis=-1))
        return logits @ weights / weights.sum() - other
    raise ValueError(f"unknown score {score!r}; expected one of {SCORES}")


def presence(outputs: ModelOutputs, arrays: TargetArrays) -> jax.Array:
    """(batch,) how much each window shows the target (contrast aside): the summed probability
    of its classes, or the cosine with its text (clipped at 0)."""
    if arrays.text is not None:
        return jax.nn.relu(_cosine(outputs.projection, arrays.text))
    return jax.nn.softmax(outputs.logits, axis=-1) @ arrays.classes


def with_top_classes(arrays: TargetArrays, probabilities: jax.Array, top_k: int) -> TargetArrays:
    """`arrays` with the `top_k` most probable classes (of (classes,) `probabilities`) as the
    target when none is set."""
    if arrays.classes is not None or arrays.text is not None:
        return arrays
    top = jax.lax.top_k(probabilities, top_k)[1]
    return arrays._replace(classes=jax.nn.one_hot(top, probabilities.shape[-1]).sum(axis=0))
