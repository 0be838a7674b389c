"""Typed training settings, read once from an ml-collections config at the top of a run.

Config files (asf_jax/configs/) hold numbers; these frozen dataclasses hold the same numbers with
their types checked, so a malformed config fails at start-up with the field's name, and the
modules below the trainer take the settings they need instead of re-reading the config.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Self

import ml_collections

from asf_jax.lep import LOSSES, SOURCES
from asf_jax.models.slowfast import ModelConfig
from asf_jax.recipe import SHORT_CLIP_MODES
from asf_jax.specaugment import SpecAugmentConfig

DTYPES = ("float32", "bfloat16")
SCHEDULES = ("steps", "cosine")


class ConfigError(ValueError):
    """A config whose fields are missing, unknown or out of range; names the field."""


def _section(cls: type, values: dict[str, Any], section: str) -> Any:
    """`cls(**values)`, with unknown or missing fields and bad values reported by name."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown, missing = set(values) - fields, fields - set(values) - _defaulted(cls)
    if unknown or missing:
        raise ConfigError(f"config.{section}: unknown fields {sorted(unknown)}" if unknown
                          else f"config.{section}: missing fields {sorted(missing)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config.{section}: {error}") from None


def _defaulted(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class DataSettings:
    data_dir: str
    config: str  # builder config: slowfast, slow, or *_float16
    train_split: str
    eval_split: str
    worker_count: int = 0  # grain worker processes for the training input
    read_threads: int = 4
    name: str = "vggsound"  # the dataset in data_dir: vggsound, or the --name of your own
    short_clips: str = ""  # "" = the dataset's recipe, else how clips under 5.119 s are filled

    def __post_init__(self) -> None:
        if self.short_clips and self.short_clips not in SHORT_CLIP_MODES:
            raise ValueError(f"short_clips must be one of {SHORT_CLIP_MODES} or empty, got "
                             f"{self.short_clips!r}")

    @property
    def path(self) -> Path:
        return Path(self.data_dir).expanduser()


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    enable: bool
    num_epochs: int
    global_batch_size: int
    num_steps: int | None = None  # overrides num_epochs when set
    dtype: str = "float32"  # compute dtype; parameters stay float32
    init_from: str = ""  # asf_jax checkpoint, workdir or .pyth to fine-tune from
    log_every_steps: int = 50
    checkpoint_every_steps: int = 1000
    keep_checkpoints: int = 3
    precise_bn_batches: int = 200  # 0 disables the re-estimation before evaluation
    profile_steps: int = 0  # trace this many steps with jax.profiler into WORKDIR/profile

    def __post_init__(self) -> None:
        _require(self.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        _require(self.global_batch_size > 0, "global_batch_size must be positive")
        for name in ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
            _require(getattr(self, name) > 0, f"{name} must be positive")
        _require(self.precise_bn_batches >= 0 and self.profile_steps >= 0,
                 "precise_bn_batches and profile_steps must be >= 0")


@dataclasses.dataclass(frozen=True)
class OptimSettings:
    learning_rate: float
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4  # not on BatchNorm scale/shift
    schedule: str = "steps"  # steps (x decay_factor at decay_epochs) or cosine
    decay_epochs: tuple[float, ...] = (30, 40)
    decay_factor: float = 0.1
    warmup_epochs: float = 0.0
    clip_norm: float | None = None

    def __post_init__(self) -> None:
        _require(self.schedule in SCHEDULES,
                 f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _require(self.learning_rate > 0, "learning_rate must be positive")
        object.__setattr__(self, "decay_epochs", tuple(self.decay_epochs))


@dataclasses.dataclass(frozen=True)
class LEPSettings:
    enable: bool = False
    lam: float = 0.5  # loss = (1 - lam) * CE + lam * embedding term
    loss: str = "mse"  # embedding term: mse (the thesis), cosine or contrastive
    temperature: float = 0.07  # of the contrastive term
    source: str = "logits"  # the projection reads the logits (the thesis) or pooled "features"
    lam_warmup_epochs: float = 0.0  # lam ramps up linearly from 0 over these epochs
    embeddings: str = ""  # .npz from asf_jax.embed_labels; "" = embed the class names now
    encoder: str = "glove-6b-50d"  # with embeddings="": the text encoder of the class names
    templates: tuple[str, ...] = ()  # sentence encoders: prompts such as "the sound of {label}"
    held_out_classes: int = 0  # K > 0: K classes (chosen by the seed) kept out of training
    held_out: str = ""  # or the classes kept out by name, comma-separated

    def __post_init__(self) -> None:
        object.__setattr__(self, "templates", tuple(self.templates))
        _require(0.0 <= self.lam <= 1.0, f"lam must lie in [0, 1], got {self.lam}")
        _require(self.held_out_classes >= 0, "held_out_classes must be >= 0")
        _require(not (self.held_out_classes and self.held_out),
                 "give held_out_classes (K by seed) or held_out (names), not both")
        _require(self.loss in LOSSES, f"loss must be one of {LOSSES}, got {self.loss!r}")
        _require(self.source in SOURCES, f"source must be one of {SOURCES}, got {self.source!r}")
        _require(self.temperature > 0 and self.lam_warmup_epochs >= 0,
                 "temperature must be positive and lam_warmup_epochs >= 0")


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
    """How a model started from `train.init_from` adapts (fine-tuning)."""

    freeze_backbone: bool = False  # linear probe: only the heads learn; BatchNorm frozen too
    backbone_lr_multiplier: float = 1.0  # the backbone's learning rate over the heads' (0: frozen)
    freeze_batch_stats: bool = False  # keep the initial BatchNorm statistics (tiny datasets)

    def __post_init__(self) -> None:
        _require(self.backbone_lr_multiplier >= 0, "backbone_lr_multiplier must be >= 0")

    @property
    def backbone_frozen(self) -> bool:
        return self.freeze_backbone or self.backbone_lr_multiplier == 0

    @property
    def batch_stats_frozen(self) -> bool:
        return self.freeze_batch_stats or self.backbone_frozen


@dataclasses.dataclass(frozen=True)
class MixupSettings:
    rate: float = 0.0  # probability that a training batch is mixed
    alpha: float = 0.2  # λ ~ Beta(alpha, alpha)

    def __post_init__(self) -> None:
        _require(0.0 <= self.rate <= 1.0 and self.alpha > 0,
                 "mixup.rate must lie in [0, 1] and mixup.alpha be positive")


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    every_epochs: float = 2
    global_batch_size: int = 32
    checkpoint: str = ""  # evaluation only: asf_jax checkpoint, workdir or .pyth

    def __post_init__(self) -> None:
        _require(self.every_epochs > 0 and self.global_batch_size > 0,
                 "every_epochs and global_batch_size must be positive")


@dataclasses.dataclass(frozen=True)
class WandbSettings:
    project: str = ""  # set to log to Weights & Biases (if installed)
    entity: str = ""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a training or evaluation run reads from its config."""

    seed: int
    data: DataSettings
    model: dict[str, Any]  # ModelConfig fields but the dataset's (classes, frames, LEP size)
    specaugment: SpecAugmentConfig
    train: TrainSettings
    optim: OptimSettings
    lep: LEPSettings
    finetune: FinetuneSettings
    mixup: MixupSettings
    eval: EvalSettings
    wandb: WandbSettings
    config_json: dict[str, Any]  # the whole config, as stored with checkpoints

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Self:
        values = config.to_dict()
        sections = {"data": DataSettings, "train": TrainSettings, "optim": OptimSettings,
                    "lep": LEPSettings, "finetune": FinetuneSettings, "mixup": MixupSettings,
                    "eval": EvalSettings, "wandb": WandbSettings,
                    "specaugment": SpecAugmentConfig}
        unknown = set(values) - set(sections) - {"seed", "model"}
        if unknown:
            raise ConfigError(f"config: unknown sections {sorted(unknown)}")
        parsed = {name: _section(kind, values.get(name, {}), name)
                  for name, kind in sections.items()}
        model = dict(values.get("model", {}))
        _section(ModelConfig, model | {"num_classes": 2}, "model")  # checked now, built later
        return cls(seed=int(values.get("seed", 0)), model=model,
                   config_json=json.loads(config.to_json_best_effort()), **parsed)

    def model_config(self, num_classes: int, num_frames: int, embedding_dim: int = 0
                     ) -> ModelConfig:
        return ModelConfig(num_classes=num_classes, num_frames=num_frames,
                           embedding_dim=embedding_dim, embedding_source=self.lep.source,
                           **self.model)
