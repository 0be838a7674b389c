"""Reading a manual dir of your own labelled sounds: a CSV list, or one folder per class.

Layouts (`scan` picks by what it is given and what it finds):

* a CSV file with a header row (`Layout.csv`): a path column (relative to the manual dir or to the
  CSV's folder, or a bare file name found anywhere below the manual dir, as ESC-50's
  `meta/esc50.csv` and UrbanSound8K's metadata give), a label column, optionally a split or a fold
  column. Usual column names are detected (`COLUMN_NAMES`); `Layout` names override them.
* otherwise one folder per class, `DIR/<label>/**/<audio>`, or `DIR/<split>/<label>/**/<audio>`
  when every top-level folder is a split name (`SPLIT_FOLDERS`).

A fold column gives splits `fold1` ... `foldK` (fold values 1..K, `fold3`, or any names, numbered
in sorted order); with both a fold and a split column the folds are used unless the split column
was named explicitly. Without either, each class is split into train and test deterministically
(`stratified_split`). Classes are those of `classes.txt` if present, else the sorted labels found.
As for VGG-Sound, every row or file that cannot be used is a `Skip` with its reason. No TFDS here.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
from pathlib import Path

from asf_jax import classes
from asf_jax.datasets.manual_dir import (
    AUDIO_SUFFIXES,
    CLASSES_FILE,
    Clip,
    Manifest,
    ManualDirError,
    Skip,
    check_manual_dir,
    index_audio,
)

COLUMN_NAMES = {  # detected in this order, case-insensitively
    "path": ("path", "filename", "file", "slice_file_name", "file_name", "filepath"),
    "label": ("label", "category", "class", "class_name"),
    "split": ("split",),
    "fold": ("fold",),
}
SPLIT_FOLDERS = {"train": "train", "training": "train", "test": "test", "testing": "test",
                 "validation": "validation", "valid": "validation", "val": "validation",
                 "eval": "eval", "evaluation": "eval", "dev": "dev"}
_SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a TFDS split name
_FOLD = re.compile(r"^(?:fold[_ -]?)?(\d+)$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How to read a custom manual dir: the CSV list and its columns, or folders (csv=None)."""

    csv: str | None = None  # path of the list (absolute, or relative to the manual dir)
    path_column: str | None = None  # None: detected
    label_column: str | None = None
    split_column: str | None = None
    fold_column: str | None = None
    test_fraction: float = 0.2  # of each class, when the list gives neither split nor fold

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ManualDirError(f"test_fraction must lie in (0, 1), got {self.test_fraction}")


def _sort_key(clip: Clip) -> str:
    return hashlib.sha1(clip.key.encode()).hexdigest()


def stratified_split(clips: list[Clip], test_fraction: float) -> list[Clip]:
    """Each class's clips split into test (`test_fraction`, rounded, at least one of two or more)
    and train, by the hash of their path: the same files always land in the same split, and
    adding files does not move the others."""
    by_label: dict[str, list[Clip]] = {}
    for clip in clips:
        by_label.setdefault(clip.label, []).append(clip)
    assigned = []
    for members in by_label.values():
        members.sort(key=_sort_key)
        num_test = min(len(members) - 1, max(1, round(test_fraction * len(members))))
        assigned += [dataclasses.replace(clip, split="test" if i < num_test else "train")
                     for i, clip in enumerate(members)]
    return assigned


def _clip(root: Path, path: Path, label: str, split: str, source: str) -> Clip:
    """A clip keyed by its path relative to the manual dir (unique, and stable across builds)."""
    return Clip(path.relative_to(root).as_posix(), 0, label, split, path, source)


def _class_names(root: Path, labels: list[str]) -> list[str]:
    path = root / CLASSES_FILE
    if path.is_file():
        try:
            return classes.read_class_names(path)
        except ValueError as error:
            raise ManualDirError(str(error)) from None
    return sorted(set(labels))


def _finish(root: Path, annotation: str, clips: list[Clip], skipped: list[Skip],
            splitting: str, layout: Layout, notes: list[str] | None = None
            ) -> tuple[list[str], Manifest]:
    """Class list, unknown labels skipped, the stratified split where none was given."""
    names = _class_names(root, [clip.label for clip in clips])
    known = set(names)
    for clip in clips:
        if clip.label not in known:
            skipped.append(Skip("unknown label", f"label {clip.label!r} is not in {CLASSES_FILE}",
                                clip.source, clip.split or None, clip.key))
    clips = [clip for clip in clips if clip.label in known]
    if not clips:
        raise ManualDirError(f"{annotation} gives no usable clip below {root} "
                             f"({len(skipped)} skipped: "
                             f"{sorted({s.reason for s in skipped}) or 'no audio files'})")
    if not splitting:
        clips = stratified_split(clips, layout.test_fraction)
        splitting = (f"none given: {layout.test_fraction:.0%} of each class to test, the rest "
                     "to train (stratified, by the hash of the path)")
    by_split: dict[str, list[Clip]] = {}
    for clip in sorted(clips, key=lambda c: c.key):
        by_split.setdefault(clip.split, []).append(clip)
    return names, Manifest(annotation, by_split, skipped, notes or [], splitting)


# ------------------------------------------------------------------------------------------------
# A CSV list.
# ------------------------------------------------------------------------------------------------


def detect_columns(header: list[str], layout: Layout) -> dict[str, str | None]:
    """The column of each role: named by `layout`, else the first usual name in the header."""
    lowered = {name.strip().lower(): name for name in header}
    columns = {}
    for role, usual in COLUMN_NAMES.items():
        given = getattr(layout, f"{role}_column")
        if given is not None and given not in header:
            raise ManualDirError(f"--{role}_column {given!r} is not a column of the list "
                                 f"(columns: {header})")
        columns[role] = given or next((lowered[n] for n in usual if n in lowered), None)
    for role in ("path", "label"):
        if columns[role] is None:
            raise ManualDirError(f"no {role} column in the list's header {header}: name one "
                                 f"{COLUMN_NAMES[role]} or pass --{role}_column")
    if columns["split"] and columns["fold"]:
        use_split = layout.split_column is not None and layout.fold_column is None
        columns["fold" if use_split else "split"] = None
    return columns


def _fold_splits(values: list[str]) -> tuple[dict[str, str], str]:
    """Split name of each fold value, and how they were numbered."""
    numbers = {value: _FOLD.match(value) for value in values}
    if all(numbers.values()):
        return {v: f"fold{int(m[1])}" for v, m in numbers.items()}, "folds from the fold column"
    ordered = sorted(values)
    mapping = {value: f"fold{i}" for i, value in enumerate(ordered, start=1)}
    return mapping, "folds from the fold column, numbered in sorted order: " + ", ".join(
        f"{split} = {value}" for value, split in mapping.items())


def _resolve(root: Path, csv_dir: Path, text: str, index: dict[str, Path] | None
             ) -> Path | str:
    """The audio file a path cell names, or why none was found."""
    for base in (root, csv_dir):
        candidate = Path(os.path.normpath(base / text))
        if candidate.is_file():
            if not candidate.is_relative_to(root):
                return f"{text} lies outside the manual dir"
            return candidate
    if index is not None and "/" not in text and "\\" not in text:
        found = index.get(os.path.splitext(text)[0])
        if found is not None:
            return found
    return f"no file {text} below the manual dir"


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV file with a header row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except UnicodeDecodeError as error:
        raise ManualDirError(f"{path} is not a UTF-8 text CSV file ({error})") from None
    except OSError as error:
        raise ManualDirError(f"cannot read {path}: {error.strerror or error}") from None
    if not header or not rows:
        raise ManualDirError(f"{path} has no header row or no rows")
    return header, rows


def scan_csv(root: Path, layout: Layout) -> tuple[list[str], Manifest]:
    """The clips a CSV list gives (see the module docstring)."""
    path = Path(layout.csv).expanduser()
    path = path if path.is_absolute() or path.is_file() else root / path
    header, rows = _read_csv(path)
    columns = detect_columns(header, layout)
    index = None
    if any("/" not in row[columns["path"]] for row in rows):
        index, _ = index_audio(root)
    folds, splitting = {}, ""
    if columns["fold"]:
        folds, splitting = _fold_splits(sorted({row[columns["fold"]].strip() for row in rows
                                                if row[columns["fold"]].strip()}))
    elif columns["split"]:
        splitting = "from the split column"
    clips, skipped, seen = [], [], {}
    for number, row in enumerate(rows, start=2):
        source = f"{path.name}:{number}"
        label = (row[columns["label"]] or "").strip()
        split = ""
        if columns["fold"]:
            split = folds.get((row[columns["fold"]] or "").strip(), "")
        elif columns["split"]:
            split = (row[columns["split"]] or "").strip().lower()
        if not label:
            skipped.append(Skip("missing label", f"empty {columns['label']} cell", source))
            continue
        if splitting and not _SPLIT_NAME.match(split):
            skipped.append(Skip("unknown split", f"no usable split or fold: {split!r}", source))
            continue
        found = _resolve(root, path.parent, (row[columns["path"]] or "").strip(), index)
        if isinstance(found, str):
            skipped.append(Skip("missing audio file", found, source, split or None))
            continue
        clip = _clip(root, found, label, split, source)
        if clip.key in seen:
            skipped.append(Skip("duplicate row", f"same file as {seen[clip.key]}", source,
                                split or None, clip.key))
            continue
        seen[clip.key] = source
        clips.append(clip)
    columns_text = ", ".join(f"{role} = {name}" for role, name in columns.items() if name)
    return _finish(root, f"{path.name} ({columns_text})", clips, skipped, splitting, layout)


# ------------------------------------------------------------------------------------------------
# One folder per class.
# ------------------------------------------------------------------------------------------------


def _audio_files(folder: Path) -> list[Path]:
    return sorted(Path(top) / name for top, _, names in os.walk(folder, followlinks=True)
                  for name in names if os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES)


def scan_folders(root: Path, layout: Layout) -> tuple[list[str], Manifest]:
    """The clips of `DIR/<label>/**` or `DIR/<split>/<label>/**` (see the module docstring)."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and _audio_files(p))
    by_split = bool(folders) and all(p.name.lower() in SPLIT_FOLDERS for p in folders)
    split_dirs = {SPLIT_FOLDERS[p.name.lower()]: p for p in folders} if by_split else {"": root}
    clips, skipped = [], []
    for split, split_dir in split_dirs.items():
        for path in _audio_files(split_dir):
            relative = path.relative_to(split_dir)
            source = path.relative_to(root).as_posix()
            if len(relative.parts) < 2:
                skipped.append(Skip("no label folder", "an audio file outside any class folder",
                                    source, split or None))
            else:
                clips.append(_clip(root, path, relative.parts[0], split, source))
    annotation = "folders <split>/<label>/" if by_split else "folders <label>/"
    splitting = ("from the top-level folders: " + ", ".join(
        f"{p.name} -> {split}" for split, p in split_dirs.items())) if by_split else ""
    return _finish(root, annotation, clips, skipped, splitting, layout)


def scan(manual_dir: str | os.PathLike | None, layout: Layout) -> tuple[list[str], Manifest]:
    """(class names, clips per split) of a custom manual dir, by `layout`."""
    root = check_manual_dir(manual_dir)
    return scan_csv(root, layout) if layout.csv else scan_folders(root, layout)
