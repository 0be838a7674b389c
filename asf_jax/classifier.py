"""The inference API everything else stands on: `load_classifier(path)` -> `Classifier`.

A Classifier holds an AudioResNet in inference mode (running BN statistics, no dropout), the audio
recipe its features must be computed with, and its class names. A classifier trained with a Label
Embeddings Projection head also projects clips into the text space of its class-name embeddings
(`project`), where any label text can be scored (asf_jax/lep.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asf_jax import audio
from asf_jax.checkpoint import CheckpointMeta, load_model
from asf_jax.classes import default_class_names, read_class_names
from asf_jax.embeddings import LabelEmbeddings
from asf_jax.lep import LEPClassifierModel, LEPHead
from asf_jax.models.slowfast import AudioResNet, abstract_model
from asf_jax.models.torch_import import load_torch_state, model_config_from_cfg, recipe_from_cfg
from asf_jax.pyth import read_pyth
from asf_jax.recipe import AudioRecipe


class Classifier:
    """A trained model with its recipe and class names, for labelling and explaining audio."""

    def __init__(self, model: AudioResNet, recipe: AudioRecipe, class_names: list[str],
                 source: str = "", max_batch: int = 32, *, lep_head: LEPHead | None = None,
                 label_embeddings: LabelEmbeddings | None = None,
                 extra: dict[str, Any] | None = None):
        if len(class_names) != model.config.num_classes:
            raise ValueError(f"{len(class_names)} class names for a model with "
                             f"{model.config.num_classes} classes")
        model.eval()
        self.model = model
        self.recipe = recipe
        self.class_names = list(class_names)
        self.source = source
        # What the checkpoint stored besides the model (training config, LEP settings); not part
        # of `meta`, which describes `model` alone (an LEP head is kept apart from it).
        self.extra = extra or {}
        self.max_batch = max_batch
        self.graphdef, self.state = nnx.split(model)
        self._logits = jax.jit(self.apply)
        self.lep_head = lep_head
        self.label_embeddings = label_embeddings  # the frozen class-name table of an LEP model
        if lep_head is not None:
            self.head_graphdef, self.head_state = nnx.split(lep_head)
            self._project = jax.jit(self.apply_projection)

    @property
    def config(self):
        return self.model.config

    @property
    def meta(self) -> CheckpointMeta:
        return CheckpointMeta(self.model.config, self.recipe, self.class_names, self.source)

    def apply(self, logmel: jax.Array) -> jax.Array:
        """Pure (batch, frames, mel) -> (batch, classes) logits; safe inside jit and grad."""
        return nnx.merge(self.graphdef, self.state)(logmel)

    def apply_projection(self, logmel: jax.Array) -> jax.Array:
        """Pure (batch, frames, mel) -> (batch, D) LEP projection ê of the logits."""
        return nnx.merge(self.head_graphdef, self.head_state)(self.apply(logmel))

    def logits(self, logmel: np.ndarray) -> np.ndarray:
        """(batch, frames, mel) float32 -> (batch, classes) logits, in chunks of `max_batch`."""
        return self._batched(self._logits, logmel)

    def project(self, logmel: np.ndarray) -> np.ndarray:
        """(batch, frames, mel) float32 -> (batch, D) LEP projections, in the label text space."""
        if self.lep_head is None:
            raise ValueError(f"{self.source or 'this classifier'} has no Label Embeddings "
                             "Projection head; train one with config.lep.enable=True")
        return self._batched(self._project, logmel)

    def _batched(self, fn: Callable[[jax.Array], jax.Array], logmel: np.ndarray) -> np.ndarray:
        """`fn` over chunks of `max_batch`, padded to a power of two so few shapes compile."""
        logmel = np.asarray(logmel, dtype=np.float32)
        expected = (self.config.num_frames, self.recipe.num_mels)
        if logmel.ndim != 3 or logmel.shape[1:] != expected:
            raise ValueError(f"expected log-mel of shape (batch, {expected[0]}, {expected[1]}), "
                             f"got {logmel.shape}")
        outputs = []
        for start in range(0, len(logmel), self.max_batch):
            chunk = logmel[start:start + self.max_batch]
            padded = min(self.max_batch, 1 << (len(chunk) - 1).bit_length())
            chunk = np.concatenate([chunk, np.zeros((padded - len(chunk),) + expected,
                                                    np.float32)])
            outputs.append(np.asarray(fn(jnp.asarray(chunk)))[:len(logmel) - start])
        return np.concatenate(outputs)[:len(logmel)]

    def probabilities(self, logmel: np.ndarray) -> np.ndarray:
        return np.asarray(jax.nn.softmax(self.logits(logmel), axis=-1))

    def predict(self, audio_or_path: str | os.PathLike | np.ndarray, sr: int | None = None,
                num_views: int = 2) -> np.ndarray:
        """(classes,) softmax averaged over the recipe's evenly spaced test views."""
        views = audio.logmel_views(audio_or_path, sr, recipe=self.recipe, num_views=num_views)
        return self.probabilities(views).mean(axis=0)


def load_classifier(path: str | os.PathLike, class_names: list[str] | str | None = None
                    ) -> Classifier:
    """Load a reference PyTorch `.pyth` checkpoint or an asf_jax checkpoint (or training workdir).

    `class_names` (a list or a file with one name per line) overrides the stored or default names;
    a 309-class `.pyth` defaults to the sorted VGG-Sound list (an assumption; see README).
    """
    if isinstance(class_names, (str, os.PathLike)):
        class_names = read_class_names(class_names)
    path = Path(path)
    if path.is_file():
        model, recipe, names = _from_pyth(path)
        source = f"converted from {path.name}"
    else:
        model, meta = load_model(path)
        recipe, names, source = meta.recipe, meta.class_names, meta.source
        if isinstance(model, LEPClassifierModel):
            return Classifier(model.backbone, recipe, class_names or names, source,
                              lep_head=model.head, label_embeddings=stored_label_embeddings(meta),
                              extra=meta.extra)
        return Classifier(model, recipe, class_names or names, source, extra=meta.extra)
    return Classifier(model, recipe, class_names or names, source)


def stored_label_embeddings(meta: CheckpointMeta) -> LabelEmbeddings:
    """The class-name embedding table an LEP checkpoint was trained against."""
    lep = meta.extra["lep"]
    return LabelEmbeddings(np.asarray(lep["embeddings"], np.float32), tuple(meta.class_names),
                           lep["encoder"])


def _from_pyth(path: Path) -> tuple[AudioResNet, AudioRecipe, list[str]]:
    checkpoint = read_pyth(path)
    config = model_config_from_cfg(checkpoint.cfg)
    model = abstract_model(config)
    load_torch_state(model, checkpoint.model_state, source=str(path))
    return model, recipe_from_cfg(checkpoint.cfg, config.arch), default_class_names(
        config.num_classes)
