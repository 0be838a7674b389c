"""Class-name lists: the shipped VGG-Sound list and user-supplied files."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

VGGSOUND_NUM_CLASSES = 309


def read_class_names(path: str | os.PathLike) -> list[str]:
    """One class name per line (blank lines ignored); duplicates are an error."""
    path = Path(path)
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as error:
        raise ValueError(f"{path}: cannot read class list ({error.strerror or error})") from None
    names = [n for n in names if n]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate class names {duplicates}")
    if not names:
        raise ValueError(f"{path}: class list is empty")
    return names


def vggsound_class_names() -> list[str]:
    """The 309 VGG-Sound classes in sorted order, the order of the dataset's reference loader.

    The published Slow-Fast checkpoints index classes by an undocumented `class_id`; sorted
    order is the likely one but unverified, so every entry point also accepts another list.
    """
    text = resources.files("asf_jax").joinpath("data/vggsound_classes.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_class_names(num_classes: int) -> list[str]:
    """VGG-Sound's names for a 309-class model, placeholders otherwise."""
    if num_classes == VGGSOUND_NUM_CLASSES:
        return vggsound_class_names()
    return [f"class_{i}" for i in range(num_classes)]
