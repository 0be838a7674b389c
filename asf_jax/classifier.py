"""The inference API everything else stands on: `load_classifier(path)` -> `Classifier`.

A Classifier holds an AudioResNet in inference mode (running BN statistics, no dropout), the audio
recipe its features must be computed with, and its class names. A model trained with a Label
Embeddings Projection head also projects clips into the text space of its class-name embeddings
(`project`), where any label text can be scored (asf_jax/lep.py).
"""

from __future__ import annotations

import dataclasses
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
from asf_jax.lep import LEPMeta
from asf_jax.models.slowfast import AudioResNet, ModelConfig, ModelOutputs, abstract_model
from asf_jax.models.torch_import import load_torch_state, model_config_from_cfg, recipe_from_cfg
from asf_jax.pyth import read_pyth
from asf_jax.recipe import AudioRecipe


class Classifier:
    """A trained model with its recipe and class names, for labelling and explaining audio."""

    def __init__(self, model: AudioResNet, recipe: AudioRecipe, class_names: list[str], *,
                 source: str = "", lep: LEPMeta | None = None,
                 training_config: dict[str, Any] | None = None, max_batch: int = 32):
        if len(class_names) != model.config.num_classes:
            raise ValueError(f"{len(class_names)} class names for a model with "
                             f"{model.config.num_classes} classes")
        if (lep is None) != (model.lep_head is None):
            raise ValueError("an LEP head and its LEPMeta (table, λ) go together")
        model.eval()
        self.model = model
        self.recipe = recipe
        self.class_names = list(class_names)
        self.source = source
        self.lep = lep
        self.training_config = training_config
        self.max_batch = max_batch
        self.graphdef, self.state = nnx.split(model)
        # The weights are an argument, not constants baked into the program: compiling is faster
        # and the persistent compilation cache serves every checkpoint of this architecture.
        self._outputs = jax.jit(_forward, static_argnums=0)

    @classmethod
    def from_meta(cls, model: AudioResNet, meta: CheckpointMeta) -> Classifier:
        return cls(model, meta.recipe, meta.class_names, source=meta.source, lep=meta.lep,
                   training_config=meta.config)

    @property
    def meta(self) -> CheckpointMeta:
        """What a checkpoint of this classifier records besides its variables."""
        return CheckpointMeta(self.config, self.recipe, self.class_names, self.source, self.lep,
                              self.training_config)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def label_embeddings(self) -> LabelEmbeddings | None:
        """The frozen class-name table an LEP model was trained against (None without LEP)."""
        return self.lep and self.lep.embeddings

    def apply(self, logmel: jax.Array) -> ModelOutputs:
        """Pure (batch, frames, mel) -> logits and LEP projection; safe inside jit and grad."""
        return _forward(self.graphdef, self.state, logmel)

    def outputs(self, logmel: jax.Array) -> ModelOutputs:
        """`apply`, compiled."""
        return self._outputs(self.graphdef, self.state, logmel)

    def logits(self, logmel: np.ndarray) -> np.ndarray:
        """(batch, frames, mel) float32 -> (batch, classes) logits, in chunks of `max_batch`."""
        return self._batched(lambda x: self.outputs(x).logits, logmel)

    def project(self, logmel: np.ndarray) -> np.ndarray:
        """(batch, frames, mel) float32 -> (batch, D) LEP projections, in the label text space."""
        if self.lep is None:
            raise ValueError(f"{self.source or 'this classifier'} has no Label Embeddings "
                             "Projection head; train one with config.lep.enable=True")
        return self._batched(lambda x: self.outputs(x).projection, logmel)

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


def _forward(graphdef: nnx.GraphDef, state: nnx.State, logmel: jax.Array) -> ModelOutputs:
    return nnx.merge(graphdef, state)(logmel)


def load_classifier(path: str | os.PathLike, class_names: list[str] | str | None = None
                    ) -> Classifier:
    """Load a reference PyTorch `.pyth` checkpoint or an asf_jax checkpoint (or training workdir).

    `class_names` (a list or a file with one name per line) overrides the stored or default names;
    a 309-class `.pyth` defaults to the sorted VGG-Sound list (an assumption; see README).
    """
    if isinstance(class_names, (str, os.PathLike)):
        class_names = read_class_names(class_names)
    path = Path(path)
    model, meta = _from_pyth(path) if path.is_file() else load_model(path)
    if class_names:
        meta = dataclasses.replace(meta, class_names=list(class_names))
    return Classifier.from_meta(model, meta)


def _from_pyth(path: Path) -> tuple[AudioResNet, CheckpointMeta]:
    checkpoint = read_pyth(path)
    config = model_config_from_cfg(checkpoint.cfg)
    model = abstract_model(config)
    load_torch_state(model, checkpoint.model_state, source=str(path))
    meta = CheckpointMeta(config, recipe_from_cfg(checkpoint.cfg, config.arch),
                          default_class_names(config.num_classes), f"converted from {path.name}")
    return model, meta
