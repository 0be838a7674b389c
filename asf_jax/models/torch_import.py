"""Map a reference PyTorch state dict (and its YAML cfg) onto an `AudioResNet`.

The reference names pathway 0 Slow (or the only pathway) and pathway 1 Fast; stages are s1..s5,
laterals s1_fuse..s4_fuse. Every key is accounted for: a mismatch lists missing, unexpected and
mis-shaped keys instead of loading a half-initialised model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from asf_jax.models.slowfast import AudioResNet, ModelConfig
from asf_jax.recipe import AudioRecipe

Path = tuple[str | int, ...]

_BN_LEAVES = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}
_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"s1\.pathway(\d+)_stem\.(conv|bn)$"),
     lambda m: ("pathways", int(m[1]), "stem", m[2])),
    (re.compile(r"s(\d)_fuse\.(conv_f2s|bn)$"),
     lambda m: ("laterals", int(m[1]) - 1, "conv_bn", "conv" if m[2] == "conv_f2s" else "bn")),
    (re.compile(r"s(\d)\.pathway(\d+)_res(\d+)\.branch1(_bn)?$"),
     lambda m: ("pathways", int(m[2]), "stages", int(m[1]) - 2, int(m[3]), "shortcut",
                "bn" if m[4] else "conv")),
    (re.compile(r"s(\d)\.pathway(\d+)_res(\d+)\.branch2\.([abc])(_bn)?$"),
     lambda m: ("pathways", int(m[2]), "stages", int(m[1]) - 2, int(m[3]), m[4],
                "bn" if m[5] else "conv")),
    (re.compile(r"head\.projection$"), lambda m: ("head",)),
]


class CheckpointMismatchError(ValueError):
    """The state dict does not fit the architecture its cfg describes."""


def torch_key_to_path(key: str) -> Path | None:
    """`s2.pathway0_res1.branch2.a_bn.running_var` -> (..., 'a', 'bn', 'var'); None if unknown
    or not a model variable (num_batches_tracked)."""
    module, _, leaf = key.rpartition(".")
    for pattern, to_path in _PATTERNS:
        match = pattern.match(module)
        if match is None:
            continue
        prefix = to_path(match)
        if prefix[-1] == "bn":
            return None if leaf == "num_batches_tracked" else prefix + (_BN_LEAVES.get(leaf, leaf),)
        return prefix + ({"weight": "kernel"}.get(leaf, leaf),)
    return None


def _to_flax_layout(array: np.ndarray) -> np.ndarray:
    if array.ndim == 4:  # conv (out, in, time, freq) -> (time, freq, in, out)
        return array.transpose(2, 3, 1, 0)
    if array.ndim == 2:  # dense (out, in) -> (in, out)
        return array.T
    return array


def model_config_from_cfg(cfg: Mapping[str, Any]) -> ModelConfig:
    """Architecture settings from the reference's YAML cfg (MODEL, RESNET, SLOWFAST, AUDIO_DATA)."""
    model, resnet = cfg.get("MODEL", {}), cfg.get("RESNET", {})
    slowfast, audio = cfg.get("SLOWFAST", {}), cfg.get("AUDIO_DATA", {})
    num_classes = model.get("NUM_CLASSES", [309])
    if isinstance(num_classes, list):
        if len(num_classes) != 1:
            raise CheckpointMismatchError(
                f"checkpoint has {len(num_classes)} classification heads {num_classes} (an "
                "EPIC-KITCHENS verb/noun model?); only single-head models are supported")
        num_classes = num_classes[0]
    defaults = ModelConfig()
    return ModelConfig(
        arch=str(model.get("ARCH", defaults.arch)).lower(),
        depth=int(resnet.get("DEPTH", defaults.depth)),
        width=int(resnet.get("WIDTH_PER_GROUP", defaults.width)),
        num_classes=int(num_classes),
        alpha=int(slowfast.get("ALPHA", defaults.alpha)),
        beta_inv=int(slowfast.get("BETA_INV", defaults.beta_inv)),
        fusion_channel_ratio=int(slowfast.get("FUSION_CONV_CHANNEL_RATIO",
                                              defaults.fusion_channel_ratio)),
        fusion_kernel=int(slowfast.get("FUSION_KERNEL_SZ", defaults.fusion_kernel)),
        dropout_rate=float(model.get("DROPOUT_RATE", defaults.dropout_rate)),
        num_frames=int(audio.get("NUM_FRAMES", defaults.num_frames)),
    )


def recipe_from_cfg(cfg: Mapping[str, Any], arch: str) -> AudioRecipe:
    """The audio recipe a checkpoint was trained with (AUDIO_DATA: rate, clip, window/hop in ms)."""
    audio = cfg.get("AUDIO_DATA", {})
    rate = int(audio.get("SAMPLING_RATE", 16000))
    return AudioRecipe(
        name=arch,
        sample_rate=rate,
        clip_seconds=float(audio.get("CLIP_SECS", 5.119)),
        win_length=round(rate * float(audio.get("WINDOW_LENGTH", 20)) / 1000),
        hop_length=round(rate * float(audio.get("HOP_LENGTH", 10)) / 1000),
        num_mels=int(audio.get("NUM_FREQUENCIES", 128)),
        fmax=rate / 2,
        num_frames=int(audio.get("NUM_FRAMES", 512)),
    )


def load_torch_state(model: AudioResNet, state_dict: Mapping[str, np.ndarray],
                     source: str = "checkpoint") -> None:
    """Copy every parameter and running statistic of `state_dict` into `model`, or raise."""
    state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
    expected = {tuple(path): var for path, var in nnx.to_flat_state(state)}
    converted: dict[Path, np.ndarray] = {}
    unexpected, misshaped = [], []
    for key, array in state_dict.items():
        path = torch_key_to_path(key)
        if path is None:
            if not key.endswith("num_batches_tracked"):
                unexpected.append(key)
            continue
        if path not in expected:
            unexpected.append(key)
            continue
        value = _to_flax_layout(np.asarray(array))
        if value.shape != expected[path].shape:
            misshaped.append(f"{key}: checkpoint {tuple(np.shape(array))}, model expects "
                             f"{_torch_shape(expected[path].shape)}")
            continue
        converted[path] = value
    missing = ["/".join(map(str, p)) for p in expected if p not in converted]
    if missing or unexpected or misshaped:
        lines = [f"{source} does not match the model ({model.config.arch}, depth "
                 f"{model.config.depth}, width {model.config.width}, "
                 f"{model.config.num_classes} classes):"]
        for title, keys in (("missing", missing), ("unexpected", unexpected),
                            ("mis-shaped", misshaped)):
            if keys:
                lines.append(f"  {len(keys)} {title}: " + ", ".join(keys[:20])
                             + (" ..." if len(keys) > 20 else ""))
        raise CheckpointMismatchError("\n".join(lines))
    for path, var in expected.items():
        var.set_value(jnp.asarray(converted[path], dtype=var.get_value().dtype))
    nnx.update(model, state)


def _torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    return tuple(reversed(shape)) if len(shape) == 2 else tuple(shape)


def torch_momentum_buffers(state_dict: Mapping[str, np.ndarray], optimizer_state: Mapping
                           ) -> dict[str, np.ndarray]:
    """SGD momentum buffers of a reference optimizer state, by parameter name.

    The reference numbers trainable parameters group by group: BatchNorm parameters (names with
    `bn`) first, then the rest, each in state-dict order.
    """
    trainable = [k for k in state_dict if not k.endswith(
        ("running_mean", "running_var", "num_batches_tracked"))]
    ordered = [k for k in trainable if "bn" in k] + [k for k in trainable if "bn" not in k]
    buffers = {}
    for group in optimizer_state["param_groups"]:
        for index in group["params"]:
            entry = optimizer_state["state"].get(index, {})
            if "momentum_buffer" in entry:
                buffers[ordered[index]] = np.asarray(entry["momentum_buffer"])
    return buffers
