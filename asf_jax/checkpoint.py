"""asf_jax checkpoints on disk (orbax): model variables plus what is needed to use them.

A checkpoint is an orbax composite directory with the items `model` (parameters and BatchNorm
statistics as a nested dict) and `meta` (JSON: model config, audio recipe, class names, origin,
the training config, and for a model with a Label Embeddings Projection head its `LEPMeta`).
Training checkpoints add `opt_state` and `iterator` items to the same directory layout, so every
checkpoint a training run writes is also a classifier checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
from flax import nnx

from asf_jax.lep import LEPMeta
from asf_jax.models.slowfast import AudioResNet, ModelConfig, abstract_model
from asf_jax.recipe import AudioRecipe

if TYPE_CHECKING:
    import orbax.checkpoint as ocp

FORMAT = "asf_jax"
# 2: the LEP head is the model's `lep_head` and its settings a typed `lep` entry. Version 1 nested
# an LEP model's variables under `backbone` and `head` and kept its settings in `extra["lep"]`.
FORMAT_VERSION = 2
MODEL_ITEM, META_ITEM = "model", "meta"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the directory and the reason."""


@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    model: ModelConfig
    recipe: AudioRecipe
    class_names: list[str]
    source: str = ""
    lep: LEPMeta | None = None
    config: dict[str, Any] | None = None  # the training config, as JSON
    format_version: int = FORMAT_VERSION  # of the files this meta was read from

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": self.model.to_dict(),
                "recipe": self.recipe.to_dict(), "class_names": list(self.class_names),
                "source": self.source, "lep": self.lep and self.lep.to_json(),
                "config": self.config}

    @classmethod
    def from_json(cls, values: dict[str, Any], where: str) -> CheckpointMeta:
        if values.get("format") != FORMAT:
            raise CheckpointError(f"{where}: not an asf_jax checkpoint (format "
                                  f"{values.get('format')!r})")
        version = values.get("format_version", 0)
        if version > FORMAT_VERSION:
            raise CheckpointError(f"{where}: written by a newer asf_jax (format version "
                                  f"{version}); upgrade asf_jax")
        class_names = list(values["class_names"])
        model = values["model"]
        lep, config = values.get("lep"), values.get("config")
        if version < 2:
            extra = values.get("extra", {})
            lep, config = extra.get("lep"), extra.get("config")
            model = model | ({"embedding_dim": lep["dim"]} if lep else {})
            lep = lep and lep | {"table": lep["embeddings"]}
        try:
            return cls(ModelConfig.from_dict(model), AudioRecipe.from_dict(values["recipe"]),
                       class_names, values.get("source", ""),
                       lep and LEPMeta.from_json(lep, class_names), config, version)
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{where}: malformed checkpoint metadata ({error})") from None


def model_variables(model: nnx.Module) -> dict[str, Any]:
    """Parameters and BatchNorm statistics as a nested dict of arrays."""
    return nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))


def set_model_variables(model: nnx.Module, variables: dict[str, Any]) -> None:
    state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
    nnx.replace_by_pure_dict(state, variables)
    nnx.update(model, state)


def _orbax() -> Any:
    """orbax, imported on first use: labelling audio with a `.pyth` does not need it (~0.3 s)."""
    import orbax.checkpoint as ocp

    return ocp


def save_args(variables: dict[str, Any], meta: CheckpointMeta
              ) -> dict[str, ocp.args.CheckpointArgs]:
    """The orbax items every asf_jax checkpoint has (training adds its own)."""
    ocp = _orbax()
    return {MODEL_ITEM: ocp.args.StandardSave(variables),
            META_ITEM: ocp.args.JsonSave(meta.to_json())}


def save_classifier(directory: str | os.PathLike, model: nnx.Module, meta: CheckpointMeta
                    ) -> Path:
    directory = Path(directory).absolute()
    ocp = _orbax()
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        checkpointer.save(directory, ocp.args.Composite(**save_args(model_variables(model), meta)),
                          force=True)
    return directory


_STEP_DIR = re.compile(r"^\d+$")


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """A checkpoint directory, or the newest step below a CheckpointManager directory/workdir."""
    path = Path(path).expanduser().absolute()  # orbax refuses relative paths
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if (path / META_ITEM).is_dir():
        return path
    for root in (path, path / "checkpoints"):
        steps = sorted((p for p in root.glob("*") if _STEP_DIR.match(p.name)
                        and (p / META_ITEM).is_dir()), key=lambda p: int(p.name))
        if steps:
            return steps[-1]
    raise CheckpointError(f"{path}: not an asf_jax checkpoint (no '{META_ITEM}' item and no "
                          "numbered checkpoint steps below it)")


def read_meta(directory: Path) -> CheckpointMeta:
    ocp = _orbax()
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
            values = checkpointer.restore(directory, ocp.args.Composite(
                **{META_ITEM: ocp.args.JsonRestore()}))[META_ITEM]
    except Exception as error:  # orbax raises many types for damaged files
        raise CheckpointError(f"{directory}: unreadable checkpoint metadata ({error})") from None
    return CheckpointMeta.from_json(values, str(directory))


def _stored_layout(variables: dict[str, Any], meta: CheckpointMeta) -> dict[str, Any]:
    """The variables as this checkpoint's format version nests them."""
    if meta.format_version >= 2 or "lep_head" not in variables:
        return variables
    backbone = {key: value for key, value in variables.items() if key != "lep_head"}
    return {"backbone": backbone, "head": variables["lep_head"]}


def restore_model_variables(directory: Path, model: nnx.Module, meta: CheckpointMeta) -> None:
    """Read the `model` item into `model`; damaged or mismatched files raise CheckpointError.

    The arrays go to this process's first device whatever topology wrote them (a checkpoint of a
    TPU pod or multi-GPU run loads on a laptop).
    """
    ocp = _orbax()
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          _stored_layout(model_variables(model), meta))
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
            restored = checkpointer.restore(directory, ocp.args.Composite(
                **{MODEL_ITEM: ocp.args.StandardRestore(target)}))[MODEL_ITEM]
    except Exception as error:  # orbax raises many types for damaged files
        raise CheckpointError(f"{directory}: cannot restore the model variables ({error})"
                              ) from None
    if "backbone" in restored:  # format version 1 of an LEP model
        restored = restored["backbone"] | {"lep_head": restored["head"]}
    set_model_variables(model, restored)


def load_model(path: str | os.PathLike) -> tuple[AudioResNet, CheckpointMeta]:
    """Build the model a checkpoint describes and fill it with the stored variables."""
    directory = resolve_checkpoint_dir(path)
    meta = read_meta(directory)
    model = abstract_model(meta.model)
    restore_model_variables(directory, model, meta)
    return model, meta
