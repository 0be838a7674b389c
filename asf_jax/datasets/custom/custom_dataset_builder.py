"""Your own labelled sounds as a TFDS dataset of log-mel clips, under a name of your choice.

    python -m asf_jax.datasets.build --manual_dir ~/ESC-50-master --csv meta/esc50.csv \
        --data_dir ~/tensorflow_datasets --name esc50
    python -m asf_jax.datasets.build --manual_dir ~/my_sounds --data_dir ~/tensorflow_datasets

Same features, configs (recipes, float16), parallel build, clip cache, build report and label
index as VGG-Sound (`logmel_builder`); the manual dir is read by `custom_dir` (a CSV list, or one
folder per class). Each name is its own dataset, `<data_dir>/<name>/<config>/<version>`, so
several live side by side; `named(name)` gives its builder class, and `load_split(..., name=)`
reads it back without this module.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from asf_jax.datasets import custom_dir, manual_dir
from asf_jax.datasets.logmel_builder import LogmelBuilder

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put your audio (wav, flac, ogg, mp3, m4a or mp4) in the manual directory, either
* with a CSV list with a header row (--csv FILE): a path column (relative to the manual dir, or
  a bare file name found anywhere below it), a label column, optionally a split or a fold column
  (ESC-50's meta/esc50.csv and UrbanSound8K's metadata CSV build as they are); or
* as one folder per class, DIR/<label>/**/<audio>, or DIR/<split>/<label>/**/<audio>.
Optionally `classes.txt`, one class name per line in class-id order. Rows and files that cannot
be used are skipped and listed in `build_report.json`.
"""


class Builder(LogmelBuilder):
    """Log-mel clips of a custom dataset (whole-clip log-mel, plus two test views outside train)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Log-mels of your own sounds, with a build report."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    DESCRIPTION = "Your own labelled audio as log-mel spectrograms (time, mel)."

    def __init__(self, *, layout: custom_dir.Layout | None = None, **kwargs: Any):
        """`layout`: how the manual dir is read (default: one folder per class)."""
        self._layout = layout or custom_dir.Layout()
        super().__init__(**kwargs)

    def scan(self, root: Path) -> tuple[list[str], manual_dir.Manifest]:
        return custom_dir.scan(root, self._layout)


_NAMED: dict[str, type[Builder]] = {}


def dataset_name(text: str) -> str:
    """A TFDS dataset name from any text: lower case, [a-z0-9_], starting with a letter."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not name:
        raise ValueError(f"no dataset name can be made of {text!r}")
    return name if name[0].isalpha() else f"d_{name}"


def named(name: str) -> type[Builder]:
    """The builder class of the dataset `name` (a subclass kept out of TFDS's registry, so that
    any number of names, and names of registered datasets, can be used)."""
    if name not in _NAMED:
        _NAMED[name] = types.new_class(
            f"Builder_{name}", (Builder,), {"skip_registration": True},
            lambda namespace: namespace.update(name=name, __module__=__name__))
    return _NAMED[name]
