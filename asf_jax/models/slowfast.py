"""The Auditory Slow-Fast network (Kazakos et al., ICASSP 2021) and its single-pathway variants.

One log-mel batch `(batch, frames, mel)` goes in; the Slow pathway gathers its frames inside the
model, so a single gradient w.r.t. the input covers both pathways (used by the explainer).
Module names follow the reference's state-dict structure so checkpoint import is a renaming.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from asf_jax.lep import SOURCES, LEPHead
from asf_jax.models.layers import ConvBN, dense_init, max_pool_3x3, stored
from asf_jax.serialization import DictSerializable

STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
FREQ_STRIDES = (1, 2, 2, 2)  # stages 2..5; time is never strided after the stem
ARCHS = ("slowfast", "slow", "fast")


@dataclasses.dataclass(frozen=True)
class ModelConfig(DictSerializable):
    """Architecture of a Slow-Fast, Slow-only or Fast-only auditory ResNet (DESIGN.md)."""

    arch: str = "slowfast"
    depth: int = 50
    width: int = 64  # Slow stem channels (RESNET.WIDTH_PER_GROUP); Fast uses width // beta_inv
    num_classes: int = 309
    alpha: int = 4  # Fast frames per Slow frame
    beta_inv: int = 8  # Slow channels per Fast channel
    fusion_channel_ratio: int = 2
    fusion_kernel: int = 7
    dropout_rate: float = 0.5
    num_frames: int = 512  # input frames (128 for the Slow-only recipe)
    stage_blocks: tuple[int, ...] | None = None  # overrides depth's blocks; for tiny test models
    embedding_dim: int = 0  # size D of a Label Embeddings Projection head; 0: no such head
    embedding_source: str = "logits"  # what the LEP head projects: "logits" or pooled "features"

    @property
    def blocks(self) -> tuple[int, ...]:
        return tuple(self.stage_blocks) if self.stage_blocks else STAGE_BLOCKS[self.depth]

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHS}")
        if self.depth not in STAGE_BLOCKS:
            raise ValueError(f"depth must be one of {sorted(STAGE_BLOCKS)}, got {self.depth}")
        if self.stage_blocks is not None:
            object.__setattr__(self, "stage_blocks", tuple(int(b) for b in self.stage_blocks))
            if len(self.stage_blocks) != 4 or min(self.stage_blocks) < 1:
                raise ValueError(f"stage_blocks needs 4 positive counts, got {self.stage_blocks}")
        if self.arch == "slowfast" and self.width % self.beta_inv:
            raise ValueError(f"width {self.width} is not divisible by beta_inv {self.beta_inv}")
        if self.embedding_dim < 0:
            raise ValueError(f"embedding_dim must be >= 0, got {self.embedding_dim}")
        if self.embedding_source not in SOURCES:
            raise ValueError(f"embedding_source must be one of {SOURCES}, got "
                             f"{self.embedding_source!r}")


class ModelOutputs(NamedTuple):
    """What every model answers: class logits, and the LEP projection when it has that head."""

    logits: jax.Array  # (batch, classes) float32
    projection: jax.Array | None  # (batch, D) float32 LEP projection ê of the logits, or None

@dataclasses.dataclass(frozen=True)
class PathwaySpec:
    """What distinguishes one pathway: stem kernel, time kernels per stage, width, lateral in."""

    stem_kernel: tuple[int, int]
    time_kernels: tuple[int, int, int, int]
    width: int
    lateral_channels: tuple[int, ...] = (0, 0, 0, 0)  # extra input channels per stage, from fusion


SLOW_STEM, FAST_STEM = (1, 7), (5, 7)
SLOW_TIME_KERNELS, FAST_TIME_KERNELS = (1, 1, 3, 3), (3, 3, 3, 3)


def pathway_specs(config: ModelConfig) -> list[PathwaySpec]:
    """Pathway 0 is Slow (or the only pathway), pathway 1 is Fast."""
    if config.arch == "slow":
        return [PathwaySpec(SLOW_STEM, SLOW_TIME_KERNELS, config.width)]
    if config.arch == "fast":
        return [PathwaySpec(FAST_STEM, FAST_TIME_KERNELS, config.width)]
    fast_width = config.width // config.beta_inv
    # The lateral doubles the Fast channels at the stem and at the outputs of stages 2..4.
    fused = tuple(config.fusion_channel_ratio * fast_width * m for m in (1, 4, 8, 16))
    return [PathwaySpec(SLOW_STEM, SLOW_TIME_KERNELS, config.width, fused),
            PathwaySpec(FAST_STEM, FAST_TIME_KERNELS, fast_width)]


class Bottleneck(nnx.Module):
    """1x1-style bottleneck: a (Tk x 1) -> b (1 x 3, freq stride) -> c (1 x 1), plus shortcut."""

    def __init__(self, in_features: int, inner: int, out_features: int, *, time_kernel: int,
                 freq_stride: int, dtype: jnp.dtype | None, rngs: nnx.Rngs):
        self.a = ConvBN(in_features, inner, (time_kernel, 1), dtype=dtype, rngs=rngs)
        self.b = ConvBN(inner, inner, (1, 3), strides=(1, freq_stride), dtype=dtype, rngs=rngs)
        self.c = ConvBN(inner, out_features, (1, 1), relu=False, zero_init_bn=True, dtype=dtype,
                        rngs=rngs)
        needs_projection = in_features != out_features or freq_stride != 1
        self.shortcut = (ConvBN(in_features, out_features, (1, 1), strides=(1, freq_stride),
                                relu=False, dtype=dtype, rngs=rngs)
                         if needs_projection else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        residual = self.shortcut(x) if self.shortcut is not None else x
        return stored(nnx.relu(self.c(self.b(self.a(x))) + residual))


class Pathway(nnx.Module):
    """Stem (conv, BN, ReLU, max-pool) and stages 2..5 of one pathway."""

    def __init__(self, spec: PathwaySpec, blocks: tuple[int, ...], *, dtype: jnp.dtype | None,
                 rngs: nnx.Rngs):
        self.stem = ConvBN(1, spec.width, spec.stem_kernel, strides=(2, 2), dtype=dtype,
                           rngs=rngs)
        stages = []
        in_features = spec.width
        for index, num_blocks in enumerate(blocks):
            inner, out_features = spec.width * 2**index, spec.width * 4 * 2**index
            in_features += spec.lateral_channels[index]
            blocks = []
            for block in range(num_blocks):
                blocks.append(Bottleneck(
                    in_features, inner, out_features, time_kernel=spec.time_kernels[index],
                    freq_stride=FREQ_STRIDES[index] if block == 0 else 1, dtype=dtype, rngs=rngs))
                in_features = out_features
            stages.append(nnx.List(blocks))
        self.stages = nnx.List(stages)
        self.out_features = in_features


class Lateral(nnx.Module):
    """Fast -> Slow fusion: a time-strided (kernel x 1) conv on the Fast features, BN, ReLU."""

    def __init__(self, fast_features: int, config: ModelConfig, *, dtype: jnp.dtype | None,
                 rngs: nnx.Rngs):
        self.conv_bn = ConvBN(fast_features, fast_features * config.fusion_channel_ratio,
                              (config.fusion_kernel, 1), strides=(config.alpha, 1), dtype=dtype,
                              rngs=rngs)

    def __call__(self, slow: jax.Array, fast: jax.Array) -> jax.Array:
        # Concatenated AFTER the Slow channels.
        return jnp.concatenate([slow, self.conv_bn(fast)], axis=-1)


class AudioResNet(nnx.Module):
    """Slow-Fast (two pathways with laterals) or a single-pathway auditory ResNet."""

    def __init__(self, config: ModelConfig, *, dtype: jnp.dtype | None = None,
                 rngs: nnx.Rngs):
        self.config = config
        specs = pathway_specs(config)
        self.pathways = nnx.List([Pathway(s, config.blocks, dtype=dtype, rngs=rngs) for s in specs])
        if config.arch == "slowfast":
            fast_width = specs[1].width
            self.laterals = nnx.List([Lateral(fast_width * m, config, dtype=dtype, rngs=rngs)
                                      for m in (1, 4, 8, 16)])
        else:
            self.laterals = nnx.List([])
        self.dropout = nnx.Dropout(config.dropout_rate)
        pooled = sum(p.out_features for p in self.pathways)
        self.head = nnx.Linear(pooled, config.num_classes, kernel_init=dense_init, dtype=dtype,
                               rngs=rngs)
        lep_in = config.num_classes if config.embedding_source == "logits" else pooled
        self.lep_head = (LEPHead(lep_in, config.embedding_dim, rngs=rngs)
                         if config.embedding_dim else None)

    def pathway_inputs(self, logmel: jax.Array) -> list[jax.Array]:
        """(batch, frames, mel) -> per-pathway (batch, time, mel, 1) inputs."""
        x = logmel[..., None]
        if self.config.arch != "slowfast":
            return [x]
        # Slow frames floor(i * (T - 1) / (T/alpha - 1)), not a plain stride.
        frames = logmel.shape[1]
        index = np.linspace(0, frames - 1, frames // self.config.alpha).astype(np.int32)
        return [x[:, index], x]

    def features(self, logmel: jax.Array) -> list[jax.Array]:
        """Stage-5 activations of each pathway, (batch, time, freq, channels)."""
        return self.pathway_features(self.pathway_inputs(logmel))

    def pathway_features(self, xs: list[jax.Array], stages: range = range(4)
                         ) -> list[jax.Array]:
        """Each pathway's activations after `stages` (0..3 are stages 2..5): from the pathway
        inputs when `stages` starts at 0, else from the outputs of the stage before. The
        explainer differentiates w.r.t. either (per-pathway saliency, Grad-CAM at any stage)."""
        if stages.start == 0:
            xs = [max_pool_3x3(p.stem(x)) for p, x in zip(self.pathways, xs, strict=True)]
        for stage in stages:
            if self.laterals:
                xs = [self.laterals[stage](xs[0], xs[1])] + list(xs[1:])
            xs = [self._run_stage(p.stages[stage], x) for p, x in zip(self.pathways, xs,
                                                                       strict=True)]
        return xs

    @staticmethod
    def _run_stage(blocks: nnx.List, x: jax.Array) -> jax.Array:
        for block in blocks:
            x = block(x)
        return x

    def classify(self, features: list[jax.Array], rngs: nnx.Rngs | None = None
                 ) -> ModelOutputs:
        """Global average pool of each pathway, concat (Slow first), dropout, linear head, and
        the LEP projection of the logits when the model has that head.

        Dropout draws from `rngs` (needed in training mode only).
        """
        pooled = self.dropout(jnp.concatenate([f.mean(axis=(1, 2)) for f in features], axis=-1),
                              rngs=rngs)
        logits = self.head(pooled).astype(jnp.float32)
        if self.lep_head is None:
            return ModelOutputs(logits, None)
        source = logits if self.config.embedding_source == "logits" else pooled
        return ModelOutputs(logits, self.lep_head(source.astype(jnp.float32)))

    def __call__(self, logmel: jax.Array, rngs: nnx.Rngs | None = None) -> ModelOutputs:
        """(batch, frames, mel) log-mel -> logits (batch, classes) and projection (or None)."""
        return self.classify(self.features(logmel), rngs)


def count_parameters(model: nnx.Module) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def create_model(config: ModelConfig, *, seed: int = 0, dtype: jnp.dtype | None = None
                 ) -> AudioResNet:
    """A freshly initialised model. The RBG generator compiles far faster than threefry on the
    CPU, which dominates start-up time for these many small initialisers."""
    return AudioResNet(config, dtype=dtype, rngs=nnx.Rngs(jax.random.key(seed, impl="rbg")))


def abstract_model(config: ModelConfig, *, dtype: jnp.dtype | None = None) -> AudioResNet:
    """A model whose variables are shapes only: for loading, where every value is overwritten."""
    return nnx.eval_shape(lambda: AudioResNet(config, dtype=dtype, rngs=nnx.Rngs(0)))
