"""The audio recipe: every number that turns a waveform into the network's log-mel input.

A recipe is data. It travels with datasets and checkpoints so that features at training, evaluation
and explanation time are computed the same way (DESIGN.md, "Audio front end").
"""

from __future__ import annotations

import dataclasses
from typing import Any

from asf_jax.serialization import DictSerializable

# How a clip shorter than one network input is filled up to `num_frames` (audio.pad_frames):
# "edge" repeats its last frame (the reference), "tile" repeats the whole clip, "floor" appends the
# log-mel of silence, log(log_offset), and "zero" appends zeros.
SHORT_CLIP_MODES = ("edge", "tile", "floor", "zero")


@dataclasses.dataclass(frozen=True)
class AudioRecipe(DictSerializable):
    """Log-mel settings of the VGG-Sound Slow-Fast recipe (defaults) or one of its variants."""

    name: str = "slowfast"
    sample_rate: int = 16000
    clip_seconds: float = 5.119  # one network input
    win_length: int = 320  # 20 ms periodic Hann, centred in the n_fft frame
    hop_length: int = 160  # 10 ms
    n_fft: int = 2048
    num_mels: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    log_offset: float = 1e-6  # log(mel + offset), natural log, on the magnitude spectrogram
    num_frames: int = 512  # frames of one clip: 1 + (clip_samples - 1) // hop_length
    short_clips: str = "edge"  # filling of shorter clips, one of SHORT_CLIP_MODES; read time only

    @property
    def clip_samples(self) -> int:
        """`round(sr * clip_seconds)`; the reference slices one sample less (clip_samples - 1)."""
        return round(self.sample_rate * self.clip_seconds)

    @property
    def window_samples(self) -> int:
        """Samples of the waveform that make one clip's `num_frames` frames (81903 for SlowFast)."""
        return self.clip_samples - 1

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def features(self) -> dict[str, Any]:
        """The fields that fix the stored log-mel features (all but the name and `short_clips`,
        which applies when the features are read)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("name", "short_clips")}

    def __post_init__(self) -> None:
        if self.short_clips not in SHORT_CLIP_MODES:
            raise ValueError(f"recipe {self.name!r}: short_clips must be one of "
                             f"{SHORT_CLIP_MODES}, got {self.short_clips!r}")
        expected = 1 + self.window_samples // self.hop_length
        if expected != self.num_frames:
            raise ValueError(
                f"recipe {self.name!r}: {self.window_samples} samples at hop {self.hop_length} "
                f"give "
                f"{expected} frames, not num_frames={self.num_frames}"
            )


SLOWFAST = AudioRecipe()
# The Fast-only model reads the same 512-frame input as SlowFast's fast pathway.
FAST = dataclasses.replace(SLOWFAST, name="fast")
# The Slow-only model has its own log-mel: hop 40 ms, 128 frames per clip, fed whole.
SLOW = dataclasses.replace(SLOWFAST, name="slow", hop_length=640, num_frames=128)

RECIPES: dict[str, AudioRecipe] = {r.name: r for r in (SLOWFAST, FAST, SLOW)}


def get_recipe(recipe: str | AudioRecipe | dict[str, Any]) -> AudioRecipe:
    """Accept a recipe, its name, or its dict form (as stored in checkpoints and datasets)."""
    if isinstance(recipe, AudioRecipe):
        return recipe
    if isinstance(recipe, dict):
        return AudioRecipe.from_dict(recipe)
    try:
        return RECIPES[recipe]
    except KeyError:
        raise ValueError(f"unknown audio recipe {recipe!r}; known: {sorted(RECIPES)}") from None
