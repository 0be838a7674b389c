"""The synthetic demo dataset: layout, determinism, broken inputs, variety, learnability."""

from __future__ import annotations

import csv
import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asf_jax.audio import AudioError, load_audio, logmel
from asf_jax.datasets.demo import BROKEN_REASONS, CLASS_NAMES, DemoSummary, make_demo_dataset
from asf_jax.datasets.demo.cli import main
from asf_jax.datasets.demo.plan import ID_ALPHABET

ROOT = Path(__file__).resolve().parents[1]
SIZE = {"clips_per_class": 4, "test_per_class": 1}
SPLITS = ("train", "test")


@dataclasses.dataclass
class Demo:
    root: Path
    summary: DemoSummary
    rows: list[list[str]]
    files: dict[str, Path]  # "<youtube_id>_<start:06d>" -> audio file


def _read(root: Path, summary: DemoSummary) -> Demo:
    with open(root / "vggsound.csv", newline="") as f:
        rows = list(csv.reader(f))
    files = {p.name.rsplit(".", 1)[0]: p for p in sorted((root / "audio").rglob("*"))
             if p.is_file()}
    return Demo(root, summary, rows, files)


def _audio_by_key(demo: Demo) -> dict[str, np.ndarray]:
    """Every decodable file, as load_audio reads it (16 kHz mono)."""
    audio = {}
    for key, path in demo.files.items():
        try:
            audio[key] = load_audio(path)
        except AudioError:
            pass
    return audio


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Demo]:
    """Seed 0 written twice (the second time by the CLI, over a seed-1 dataset) and seed 1."""
    base = tmp_path_factory.mktemp("demo")
    first = _read(base / "a", make_demo_dataset(base / "a", seed=0, **SIZE))
    other_summary = make_demo_dataset(base / "b", seed=1, **SIZE)
    shutil.copytree(base / "b", base / "seed1")  # keep seed 1 before the CLI overwrites "b"
    other = _read(base / "seed1", other_summary)
    main(["--out", str(base / "b"), "--seed", "0", "--clips-per-class", "4",
          "--test-per-class", "1"])
    again = _read(base / "b", first.summary)
    return {"first": first, "again": again, "other": other}


@pytest.fixture(scope="module")
def demo(demos: dict[str, Demo]) -> Demo:
    return demos["first"]


@pytest.fixture(scope="module")
def audio(demo: Demo) -> dict[str, np.ndarray]:
    return _audio_by_key(demo)


def _key(row: list[str]) -> str:
    return f"{row[0]}_{int(row[1]):06d}"


def reference_filter(demo: Demo, audio: dict[str, np.ndarray]
                     ) -> tuple[dict[str, list[list[str]]], dict[str, int]]:
    """What a correct builder does with the CSV: kept rows per split, skipped rows per reason."""
    classes = (demo.root / "classes.txt").read_text().splitlines()
    kept: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
    skipped = dict.fromkeys(BROKEN_REASONS, 0)
    seen = set()
    for row in demo.rows:
        if len(row) != 4 or not row[1].isdigit():
            reason = "malformed_row"
        elif tuple(row) in seen:
            reason = "duplicate_row"
        elif row[2] not in classes:
            reason = "unknown_label"
        elif row[3] not in SPLITS:
            reason = "unknown_split"
        elif _key(row) not in demo.files:
            reason = "missing_file"
        elif _key(row) not in audio:
            path = demo.files[_key(row)]
            reason = ("empty_file" if path.stat().st_size == 0 else
                      "truncated_file" if path.read_bytes()[:4] == b"RIFF" else "corrupt_file")
        else:
            kept[row[3]].append(row)
            seen.add(tuple(row))
            continue
        seen.add(tuple(row))
        skipped[reason] += 1
    return kept, skipped


def test_layout(demo: Demo) -> None:
    assert (demo.root / "classes.txt").read_text() == "".join(
        f"{c}\n" for c in sorted(CLASS_NAMES))
    assert "youtube_id" not in demo.rows[0]  # no header
    assert len(demo.rows) == demo.summary.csv_rows
    assert sorted(len(row) for row in demo.rows if len(row) != 4) == [3]
    assert [row[1] for row in demo.rows if not row[1].isdigit()] == ["n/a"]
    ids = [row[0] for row in demo.rows]
    assert all(len(i) == 11 and set(i) <= set(ID_ALPHABET) for i in ids)
    assert any("_" in i for i in ids) and any("-" in i[1:] for i in ids)
    assert any(i.startswith("-") for i in ids)
    for key, path in demo.files.items():  # <youtube_id>_<start:06d>.<ext>, folders nested
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}_\d{6}", key), path.name
    folders = {p.parent.relative_to(demo.root) for p in demo.files.values()}
    assert len(folders) >= 3 and max(len(f.parts) for f in folders) >= 3
    well_formed = [r for r in demo.rows if len(r) == 4 and r[1].isdigit()]
    assert sum(_key(r) not in demo.files for r in well_formed) == 1  # just the missing file
    readme = (demo.root / "README.txt").read_text()
    assert all(reason in readme for reason in BROKEN_REASONS)


def test_broken_entries_are_skipped_as_summarised(demo: Demo, audio: dict[str, np.ndarray]
                                                  ) -> None:
    kept, skipped = reference_filter(demo, audio)
    assert skipped == demo.summary.broken
    assert {s: len(rows) for s, rows in kept.items()} == demo.summary.expected_kept
    for reason, relative in demo.summary.broken_files.items():
        with pytest.raises(AudioError):
            load_audio(demo.root / relative)
        assert relative in (demo.root / "README.txt").read_text(), reason


def test_same_seed_same_dataset_other_seed_differs(demos: dict[str, Demo]) -> None:
    first, again, other = demos["first"], demos["again"], demos["other"]
    for name in ("vggsound.csv", "classes.txt", "README.txt"):
        assert (first.root / name).read_bytes() == (again.root / name).read_bytes(), name
    assert first.files.keys() == again.files.keys()  # nothing left over from seed 1
    first_audio, again_audio = _audio_by_key(first), _audio_by_key(again)
    assert first_audio.keys() == again_audio.keys()
    for key, samples in first_audio.items():
        np.testing.assert_array_equal(samples, again_audio[key], err_msg=key)
    assert (other.root / "vggsound.csv").read_bytes() != (first.root / "vggsound.csv").read_bytes()
    assert not first.files.keys() & other.files.keys()


def test_variety(demo: Demo, audio: dict[str, np.ndarray]) -> None:
    kept, _ = reference_filter(demo, audio)
    kept_keys = [_key(row) for split in SPLITS for row in kept[split]]
    suffixes = {demo.files[k].suffix for k in kept_keys}
    assert {".wav", ".flac", ".ogg", ".mp3"} <= suffixes
    assert (".m4a" in suffixes) == (shutil.which("ffmpeg") is not None)
    infos = [soundfile.info(str(demo.files[k])) for k in kept_keys
             if demo.files[k].suffix != ".m4a"]
    assert len({i.samplerate for i in infos}) >= 3
    assert any(i.channels == 2 for i in infos) and any(i.channels == 1 for i in infos)
    assert sum(len(audio[k]) < round(16000 * 5.119) for k in kept_keys) >= 1
    silent = [row for row in kept["train"] if not audio[_key(row)].any()]
    assert len(silent) == 1 and all(audio[_key(row)].any() for row in kept["test"])
    peaks = [np.abs(audio[k]).max() for k in kept_keys if audio[k].any()]
    assert max(peaks) <= 0.95 and min(peaks) > 0.05


def test_classes_are_separable(demo: Demo, audio: dict[str, np.ndarray]) -> None:
    """Nearest centroid on the mean log-mel spectrum, leave-one-out, beats chance (10%) easily.

    Only mel bins below 4 kHz (content every sample rate has), centred per clip (random gain).
    """
    kept, _ = reference_filter(demo, audio)
    rows = [row for split in SPLITS for row in kept[split] if audio[_key(row)].any()]
    features = np.stack([logmel(audio[_key(row)])[:, :90].mean(axis=0) for row in rows])
    features -= features.mean(axis=1, keepdims=True)
    labels = np.array([CLASS_NAMES.index(row[2]) for row in rows])
    correct = 0
    for i in range(len(rows)):
        others = np.arange(len(rows)) != i
        centroids = np.stack([features[others & (labels == c)].mean(axis=0)
                              for c in range(len(CLASS_NAMES))])
        correct += np.argmin(((centroids - features[i]) ** 2).sum(axis=1)) == labels[i]
    assert correct / len(rows) > 0.65, f"accuracy {correct / len(rows):.2f}"


def test_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        make_demo_dataset(tmp_path, **SIZE)
    with pytest.raises(ValueError):
        make_demo_dataset(tmp_path / "new", clips_per_class=3, test_per_class=3)


def test_cli_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--out", "--seed", "--clips-per-class",
                                         "--test-per-class"))


@pytest.mark.parametrize("command", [["-m", "asf_jax.datasets.demo"],
                                     ["scripts/make_demo_dataset.py"]])
def test_package_module_and_scripts_wrapper_are_the_same_command(command: list[str]) -> None:
    result = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "--clips-per-class" in result.stdout
