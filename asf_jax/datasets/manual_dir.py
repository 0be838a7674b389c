"""Reading a manual directory: what every layout shares, and VGG-Sound's class list and rows.

Everything here runs before any feature work, so a manual directory that cannot be built from fails
fast with `ManualDirError`, and every row that cannot be used is kept as a `Skip` with its reason
(nothing is dropped silently). No TensorFlow and no TFDS: plain files in, plain data out.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path

from asf_jax import classes

# Preference order when one clip has several audio files (e.g. a WAV extracted from its MP4).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4")
SPLITS = ("train", "test")
FULL_LIST = "vggsound.csv"  # youtube_id,start_seconds,label,split (no header)
SPLIT_LISTS = {"train": "train.csv", "test": "test.csv"}  # "<youtube_id>_<start:06d>.<ext>",label
CLASSES_FILE = "classes.txt"
_SUFFIX_LIST = "|".join(suffix[1:] for suffix in AUDIO_SUFFIXES)
_STEM = re.compile(r"^(?P<id>.+)_(?P<start>\d+)$")


class ManualDirError(ValueError):
    """The manual directory as a whole cannot be built from (raised before feature extraction)."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One annotated clip whose audio file was found."""

    youtube_id: str
    start_seconds: int
    label: str
    split: str
    path: Path
    source: str  # "<annotation file>:<line>"

    @property
    def key(self) -> str:
        return clip_key(self.youtube_id, self.start_seconds)


@dataclasses.dataclass(frozen=True)
class Skip:
    """A row or file left out of the dataset, and why (`reason` is the category that is counted)."""

    reason: str
    detail: str
    source: str
    split: str | None = None
    key: str | None = None


@dataclasses.dataclass
class Manifest:
    """What the manual directory offers: clips per split, skipped rows, notes on the scan."""

    annotation: str
    clips: dict[str, list[Clip]]
    skipped: list[Skip]
    notes: list[str]
    splitting: str = ""  # how clips were assigned to splits, when the list does not say


def clip_key(youtube_id: str, start_seconds: int) -> str:
    """`<youtube_id>_<start_seconds:06d>`: the dataset's file stem and our example key."""
    return f"{youtube_id}_{start_seconds:06d}"


def read_class_names(manual_dir: str | os.PathLike | None) -> list[str]:
    """`classes.txt` of the manual dir (its order = class ids), else the 309 shipped classes."""
    path = Path(manual_dir) / CLASSES_FILE if manual_dir else None
    if path is None or not path.is_file():
        return classes.vggsound_class_names()
    try:
        return classes.read_class_names(path)
    except ValueError as error:
        raise ManualDirError(str(error)) from None


def check_manual_dir(manual_dir: str | os.PathLike | None) -> Path:
    """The manual dir as a Path, or a clear error when it is missing or empty."""
    if not manual_dir:
        raise ManualDirError("no manual directory given (--manual_dir): the folder with your "
                             "audio files (and their list)")
    path = Path(manual_dir).expanduser()
    if not path.is_dir():
        raise ManualDirError(f"manual directory {path} does not exist")
    if not any(path.iterdir()):
        raise ManualDirError(f"manual directory {path} is empty: put the audio files there (and "
                             "vggsound.csv, a CSV list or one folder per class)")
    return path


def index_audio(manual_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """Audio files anywhere below `manual_dir` by stem, and notes on stems with several files."""
    found: dict[str, list[Path]] = {}
    for root, _, files in os.walk(manual_dir, followlinks=True):
        for name in files:
            suffix = os.path.splitext(name)[1].lower()
            if suffix in AUDIO_SUFFIXES:
                found.setdefault(os.path.splitext(name)[0], []).append(Path(root) / name)
    notes = []
    index = {}
    for stem, paths in found.items():
        paths.sort(key=lambda p: (AUDIO_SUFFIXES.index(p.suffix.lower()), str(p)))
        index[stem] = paths[0]
        if len(paths) > 1:
            used = paths[0].relative_to(manual_dir)
            notes.append(f"{stem}: {len(paths)} audio files, used {used}")
    return index, notes


@dataclasses.dataclass(frozen=True)
class _Row:
    youtube_id: str
    start_seconds: int
    label: str
    split: str
    source: str


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ManualDirError(f"{path} is not a UTF-8 text CSV file ({error})") from None
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if any(cell.strip() for cell in row):
            yield number, [cell.strip() for cell in row]


def _parse_full_list(path: Path) -> Iterator[_Row | Skip]:
    for number, row in _csv_rows(path):
        source = f"{path.name}:{number}"
        if len(row) != 4:
            yield Skip("malformed row", f"expected 4 columns, got {len(row)}: {row}", source)
        elif not row[0] or not row[1].isdigit():
            yield Skip("malformed row", f"needs a youtube id and integer start seconds: {row}",
                       source)
        else:
            yield _Row(row[0], int(row[1]), row[2], row[3], source)


def _parse_split_list(path: Path, split: str) -> Iterator[_Row | Skip]:
    for number, row in _csv_rows(path):
        source = f"{path.name}:{number}"
        match = _STEM.match(Path(row[0]).stem) if len(row) == 2 else None
        if match is None:
            yield Skip("malformed row", f"expected \"<youtube_id>_<start:06d>.<ext>\",label: {row}",
                       source, split)
        else:
            yield _Row(match["id"], int(match["start"]), row[1], split, source)


def _annotation_rows(manual_dir: Path) -> tuple[str, list[_Row | Skip]]:
    """The rows of vggsound.csv, else of train.csv + test.csv; refuses pickled annotations."""
    full = manual_dir / FULL_LIST
    if full.is_file():
        return FULL_LIST, list(_parse_full_list(full))
    lists = {split: manual_dir / name for split, name in SPLIT_LISTS.items()}
    lists = {split: path for split, path in lists.items() if path.is_file()}
    if lists:
        rows = [row for split, path in lists.items() for row in _parse_split_list(path, split)]
        return " + ".join(path.name for path in lists.values()), rows
    pickles = sorted(p.name for p in manual_dir.glob("*.pkl"))
    if pickles:
        raise ManualDirError(
            f"{manual_dir} has only pickled annotations ({', '.join(pickles)}). They are never "
            "loaded: unpickling can execute arbitrary code. Give the dataset's CSV instead: "
            f"{FULL_LIST} (youtube_id,start_seconds,label,split) or train.csv / test.csv.")
    raise ManualDirError(f"{manual_dir} has no annotation list: expected {FULL_LIST} "
                         "(youtube_id,start_seconds,label,split) or train.csv / test.csv")


def _check_csv_shape(annotation: str, rows: list[_Row | Skip]) -> None:
    malformed = [row for row in rows if isinstance(row, Skip)]
    if not rows:
        raise ManualDirError(f"{annotation} has no rows")
    if len(malformed) * 2 > len(rows):
        examples = "; ".join(f"{s.source}: {s.detail}" for s in malformed[:3])
        raise ManualDirError(f"{annotation} does not look like the VGG-Sound list: "
                             f"{len(malformed)} of {len(rows)} rows are malformed "
                             f"(e.g. {examples})")


def scan(manual_dir: str | os.PathLike | None, class_names: list[str]) -> Manifest:
    """Match annotation rows with audio files; rows that cannot be used become `Skip`s.

    Checks, in order: malformed row, unknown split, unknown label, duplicate row (same clip
    listed again, even in another split), missing audio file.
    """
    root = check_manual_dir(manual_dir)
    annotation, rows = _annotation_rows(root)
    _check_csv_shape(annotation, rows)
    index, notes = index_audio(root)
    known = set(class_names)
    clips: dict[str, list[Clip]] = {split: [] for split in SPLITS}
    skipped: list[Skip] = []
    seen: dict[str, _Row] = {}
    for row in rows:
        if isinstance(row, Skip):
            skipped.append(row)
            continue
        key = clip_key(row.youtube_id, row.start_seconds)
        if row.split not in SPLITS:
            skipped.append(Skip("unknown split", f"split {row.split!r} is not one of {SPLITS}",
                                row.source, None, key))
        elif row.label not in known:
            skipped.append(Skip("unknown label", f"label {row.label!r} is not in the class list",
                                row.source, row.split, key))
        elif key in seen:
            first = seen[key]
            skipped.append(Skip("duplicate row", f"same clip as {first.source} ({first.split}, "
                                f"{first.label!r})", row.source, row.split, key))
        elif key not in index:
            seen[key] = row
            skipped.append(Skip("missing audio file", f"no {key}.<{_SUFFIX_LIST}> below the "
                                "manual dir", row.source, row.split, key))
        else:
            seen[key] = row
            clips[row.split].append(Clip(row.youtube_id, row.start_seconds, row.label, row.split,
                                         index[key], row.source))
    if not index:
        raise ManualDirError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) anywhere below {root}")
    if not any(clips.values()):
        reasons = collections.Counter(skip.reason for skip in skipped)
        raise ManualDirError(f"none of the {len(rows)} rows of {annotation} gives a usable clip "
                             f"({dict(reasons)}); audio files must be named "
                             f"<youtube_id>_<start:06d>.<ext>, e.g. {next(iter(index))} "
                             f"({len(index)} audio files found below {root})")
    return Manifest(annotation, clips, skipped, notes)
