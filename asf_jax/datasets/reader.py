"""Reading a built dataset (VGG-Sound or your own) from its data dir alone, without TensorFlow."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from asf_jax.datasets.label_index import scan_labels, split_labels
from asf_jax.recipe import AudioRecipe

DATASET_NAME = "vggsound"


@dataclasses.dataclass(frozen=True)
class DatasetSplit:
    """One split: a random-access source of NumPy example dicts and what is needed to use it.

    `source[i]` is a dict with `logmel` (time, mel), `views` (views, frames, mel), `label`,
    `youtube_id` (bytes), `start_seconds`, `duration` and `filename` (bytes).
    """

    source: Sequence[dict[str, Any]]
    class_names: list[str]
    recipe: AudioRecipe
    num_examples: int
    report: dict[str, Any]
    info: tfds.core.DatasetInfo | None = None
    split: str = ""

    def labels(self) -> np.ndarray:
        """Every record's label, from the index stored at build time when there is one."""
        if self.info is None:
            return scan_labels(self.source)
        return split_labels(self.info, self.split, self.source)

    def without_classes(self, classes: Sequence[int]) -> DatasetSplit:
        """The split minus the clips of `classes`, without copying or reading any clip."""
        keep = np.flatnonzero(~np.isin(self.labels(), classes))
        return dataclasses.replace(self, source=IndexView(self.source, keep),
                                   num_examples=len(keep), info=None)


class IndexView(Sequence):
    """The records of `source` at `indices` (a filtered, reordered or repeated source)."""

    def __init__(self, source: Sequence[Any], indices: np.ndarray):
        self.source = source
        self.indices = np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.source[int(self.indices[index])]


def dataset_dir(data_dir: str | os.PathLike, config: str = "slowfast",
                name: str = DATASET_NAME) -> Path:
    """`<data_dir>/<name>/<config>/<latest version>`, or `data_dir` itself if it is one."""
    root = Path(data_dir).expanduser()
    if (root / "dataset_info.json").is_file():
        return root
    config_dir = root / name / config
    versions = sorted((p for p in config_dir.glob("*") if (p / "dataset_info.json").is_file()),
                      key=lambda p: tfds.core.Version(p.name))
    if not versions:
        built = sorted(f"{p.parent.parent.parent.name}/{p.parent.parent.name}"
                       for p in root.glob("*/*/*/dataset_info.json"))
        raise FileNotFoundError(f"no built dataset {name!r} with config {config!r} under {root} "
                                f"(built: {built or 'none'}); build it with "
                                "`python -m asf_jax.datasets.build`")
    return versions[-1]


def split_parts(split: str) -> list[str]:
    """The whole splits a TFDS split string reads: "fold1+fold2[:50%]" -> ["fold1", "fold2"]."""
    return [part.split("[")[0].strip() for part in split.split("+")]


def load_split(data_dir: str | os.PathLike, split: str, config: str = "slowfast",
               name: str = DATASET_NAME) -> DatasetSplit:
    """A split (any TFDS split string, e.g. "test", "train[:1%]" or "fold1+fold2") of the built
    dataset `name` ("vggsound", or the --name of your own)."""
    builder = tfds.builder_from_directory(dataset_dir(data_dir, config, name))
    available = list(builder.info.splits)
    missing = [part for part in split_parts(split) if part not in available]
    if missing:
        raise ValueError(f"split {split!r} not in this dataset: no {missing} (splits: "
                         f"{available})")
    source = builder.as_data_source(split=split)
    metadata = builder.info.metadata or {}
    return DatasetSplit(
        source=source,
        class_names=list(builder.info.features["label"].names),
        recipe=AudioRecipe.from_dict(metadata["recipe"]),
        num_examples=len(source),
        report=metadata.get("report") or {},
        info=builder.info,
        split=split,
    )
