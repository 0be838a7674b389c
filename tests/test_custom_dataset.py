"""Your own sounds as a dataset: each manual-dir layout, column detection, class lists, folds and
split arithmetic, the stratified split, named datasets side by side, and training on folds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asf_jax.datasets import build, custom_dir, load_split
from asf_jax.datasets.custom_dir import Layout
from asf_jax.datasets.label_index import scan_labels
from asf_jax.datasets.manual_dir import ManualDirError
from asf_jax.embeddings import label_text
from tests.conftest import TINY_CLASSES, write_esc50_like, write_tiny_manual_dir

ROOT = Path(__file__).resolve().parents[1]


def _wav(path: Path, seconds: float = 0.5, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = 0.1 * np.random.default_rng(seed).standard_normal(int(16000 * seconds))
    soundfile.write(path, noise.astype(np.float32), 16000)


def _csv(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def _sizes(manifest) -> dict[str, int]:
    return {split: len(clips) for split, clips in manifest.clips.items()}


def _reasons(manifest) -> list[str]:
    return sorted(skip.reason for skip in manifest.skipped)


# ------------------------------------------------------------------------------------------------
# Layouts (scans: no feature work).
# ------------------------------------------------------------------------------------------------


def test_the_manual_dir_chooses_the_builder(tmp_path: Path) -> None:
    vgg = write_tiny_manual_dir(tmp_path / "vgg")
    assert build.builder_class(vgg, None, None)[0].name == "vggsound"
    (tmp_path / "My Sounds!" / "dog").mkdir(parents=True)
    assert build.builder_class(tmp_path / "My Sounds!", None, None)[0].name == "my_sounds"
    assert build.builder_class(vgg, "esc", Layout("vggsound.csv"))[0].name == "esc"
    with pytest.raises(ManualDirError, match="builds as 'vggsound'"):
        build.builder_class(vgg, "other", None)


def test_esc50_csv_gives_folds_from_bare_file_names(tmp_path: Path) -> None:
    root = write_esc50_like(tmp_path / "esc", folds=2, per_class_and_fold=1)
    names, manifest = custom_dir.scan(root, Layout("meta/esc50.csv"))
    assert names == sorted(TINY_CLASSES)  # "category", not the integer "target"
    assert _sizes(manifest) == {"fold1": 3, "fold2": 3}
    assert "filename" in manifest.annotation and "category" in manifest.annotation
    clip = manifest.clips["fold1"][0]
    assert clip.path.parent == root / "audio" and clip.split == "fold1"


def test_urbansound8k_csv_finds_files_in_fold_folders(tmp_path: Path) -> None:
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for fold in (1, 2):
        for index, label in enumerate(["dog_bark", "street_music"]):
            name = f"{fold}{index}-{index}-0-0.wav"
            _wav(tmp_path / "audio" / f"fold{fold}" / name, seed=fold + index)
            rows.append(f"{name},{fold}{index},0.0,0.5,1,{fold},{index},{label}")
    rows.append("gone-0-0-0.wav,9,0.0,0.5,1,2,3,dog_bark")
    _csv(tmp_path / "metadata" / "UrbanSound8K.csv", rows)
    names, manifest = custom_dir.scan(tmp_path, Layout("metadata/UrbanSound8K.csv"))
    assert names == ["dog_bark", "street_music"]
    assert _sizes(manifest) == {"fold1": 2, "fold2": 2}
    assert _reasons(manifest) == ["missing audio file"]
    assert label_text("dog_bark") == "dog bark"


def test_plain_path_label_split_and_column_flags(tmp_path: Path) -> None:
    for index in range(4):
        _wav(tmp_path / "clips" / f"{index}.wav", seed=index)
    _csv(tmp_path / "list.csv", ["Path,Label,split,kind", "clips/0.wav,french_horn,train,x",
                                 "clips/1.wav,viola,train,y", "clips/2.wav,viola,test,y",
                                 "clips/3.wav,french_horn,Test,x", "clips/3.wav,viola,train,x",
                                 "clips/1.wav,,train,y", "../outside.wav,viola,train,y"])
    names, manifest = custom_dir.scan(tmp_path, Layout("list.csv"))
    assert names == ["french_horn", "viola"] and _sizes(manifest) == {"test": 2, "train": 2}
    assert _reasons(manifest) == ["duplicate row", "missing audio file", "missing label"]
    assert label_text(names[0]) == "french horn"
    names, manifest = custom_dir.scan(tmp_path, Layout("list.csv", label_column="kind"))
    assert names == ["x", "y"]
    with pytest.raises(ManualDirError, match="'nope' is not a column"):
        custom_dir.scan(tmp_path, Layout("list.csv", split_column="nope"))
    _csv(tmp_path / "bad.csv", ["name,what", "clips/0.wav,x"])
    with pytest.raises(ManualDirError, match="no path column"):
        custom_dir.scan(tmp_path, Layout("bad.csv"))


def test_fold_column_wins_over_split_unless_split_is_named(tmp_path: Path) -> None:
    rows = ["path,label,source,fold,split"]
    for index, kit in enumerate(["kit_b", "kit_a", "kit_c", "kit_a"]):
        _wav(tmp_path / "audio" / f"{index}.wav", seed=index)
        rows.append(f"audio/{index}.wav,{'kick' if index % 2 else 'snare'},{kit},{kit},"
                    f"{'test' if kit == 'kit_c' else 'train'}")
    _csv(tmp_path / "manifest.csv", rows)
    _, manifest = custom_dir.scan(tmp_path, Layout("manifest.csv"))
    assert _sizes(manifest) == {"fold1": 2, "fold2": 1, "fold3": 1}
    assert "fold1 = kit_a" in manifest.splitting
    _, manifest = custom_dir.scan(tmp_path, Layout("manifest.csv", split_column="split"))
    assert _sizes(manifest) == {"test": 1, "train": 3}


def test_class_folders_get_a_deterministic_stratified_split(tmp_path: Path) -> None:
    for label, count in (("cat", 10), ("dog", 5), ("owl", 1)):
        for index in range(count):
            _wav(tmp_path / label / "deep" / f"{index}.flac", seed=index)
    _wav(tmp_path / "stray.wav")
    (tmp_path / "notes.txt").write_text("not audio")
    names, first = custom_dir.scan(tmp_path, Layout(test_fraction=0.2))
    assert names == ["cat", "dog", "owl"] and _reasons(first) == ["no label folder"]
    test_labels = sorted(clip.label for clip in first.clips["test"])
    assert test_labels == ["cat", "cat", "dog"]  # 20 % of each class, none of a single clip
    assert "20%" in first.splitting
    _, again = custom_dir.scan(tmp_path, Layout(test_fraction=0.2))
    assert again.clips == first.clips
    with pytest.raises(ManualDirError, match="test_fraction"):
        Layout(test_fraction=1.0)


def test_split_folders_and_classes_txt_with_an_unknown_label(tmp_path: Path) -> None:
    for split, label in (("train", "cat"), ("train", "dog"), ("Valid", "cat"), ("test", "emu")):
        _wav(tmp_path / split / label / "a.wav")
    (tmp_path / "classes.txt").write_text("dog\ncat\n")
    names, manifest = custom_dir.scan(tmp_path, Layout())
    assert names == ["dog", "cat"]
    assert _sizes(manifest) == {"train": 2, "validation": 1}
    assert [(s.reason, s.source) for s in manifest.skipped] == [("unknown label",
                                                                 "test/emu/a.wav")]


# ------------------------------------------------------------------------------------------------
# Builds.
# ------------------------------------------------------------------------------------------------


def test_fold_splits_add_up_with_their_label_index(tiny_folds_dataset: Path) -> None:
    folds = [load_split(tiny_folds_dataset, f"fold{k}", "slow", "tinyfolds") for k in (1, 2, 3)]
    assert [f.num_examples for f in folds] == [6, 6, 6]
    both = load_split(tiny_folds_dataset, "fold1+fold3", "slow", "tinyfolds")
    assert both.num_examples == 12 and both.class_names == sorted(TINY_CLASSES)
    np.testing.assert_array_equal(both.labels(), scan_labels(both.source))
    np.testing.assert_array_equal(both.labels(), np.concatenate([folds[0].labels(),
                                                                 folds[2].labels()]))
    assert both.source[0]["views"].shape[0] == 2  # every fold can be a test split
    half = load_split(tiny_folds_dataset, "fold2[:50%]+fold1", "slow", "tinyfolds")
    np.testing.assert_array_equal(half.labels(), scan_labels(half.source))
    with pytest.raises(ValueError, match="no \\['fold9'\\]"):
        load_split(tiny_folds_dataset, "fold1+fold9", "slow", "tinyfolds")
    with pytest.raises(FileNotFoundError, match="tinyfolds/slow"):
        load_split(tiny_folds_dataset, "fold1", "slow")  # not VGG-Sound


def test_two_named_datasets_side_by_side_and_bad_input_counted(tmp_path: Path) -> None:
    manual = tmp_path / "mine"
    for label in ("cat", "dog"):
        for index in range(3):
            _wav(manual / label / f"{index}.wav", seed=index)
    (manual / "dog" / "empty.wav").write_bytes(b"")
    (manual / "cat" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 8)
    (manual / "classes.txt").write_text("cat\ndog\n")
    _wav(manual / "emu" / "0.wav")
    data = tmp_path / "tfds"
    first = build.build(str(manual), str(data), config="slow", workers=1)
    second = build.build(str(manual), str(data), config="slow", workers=1, name="Mine 2",
                         layout=Layout(test_fraction=0.5))
    assert first.report.skipped_by_reason() == {"empty audio file": 1, "unknown label": 1,
                                                "unreadable audio": 1}
    assert {"mine", "mine_2"} <= {p.name for p in data.iterdir()}
    mine = load_split(data, "train", "slow", "mine")
    assert mine.class_names == ["cat", "dog"] and mine.num_examples == 4
    assert load_split(data, "train", "slow", "mine_2").num_examples == 2
    report = json.loads((Path(second.data_path) / "build_report.json").read_text())
    assert "50%" in report["splitting"]  # of 4 files per class: 2 to test, broken ones too
    assert report["num_kept"] == 6 and report["kept"]["test"] == 4


def test_main_trains_on_fold_splits_of_a_named_dataset(tiny_folds_dataset: Path,
                                                       tmp_path: Path) -> None:
    """`python -m asf_jax.main` end to end: train on fold1+fold2, evaluate on fold3."""
    result = subprocess.run(
        [sys.executable, "-m", "asf_jax.main", "--config", "demo", f"--workdir={tmp_path}",
         f"--config.data.data_dir={tiny_folds_dataset}", "--config.data.name=tinyfolds",
         "--config.data.config=slow", "--config.data.train_split=fold1+fold2",
         "--config.data.eval_split=fold3", "--config.data.read_threads=1",
         "--config.train.num_steps=2", "--config.train.global_batch_size=4",
         "--config.eval.global_batch_size=4", "--config.train.precise_bn_batches=0"],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env=os.environ | {"JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(next((tmp_path / "eval").glob("metrics_step*.json")).read_text())
    assert 0.0 <= metrics["top1"] <= 1.0
    # Its checkpoint labels a file with the dataset's own class names.
    from asf_jax.classifier import load_classifier

    classifier = load_classifier(tmp_path)
    assert classifier.class_names == sorted(TINY_CLASSES)
    clip = next((tiny_folds_dataset.parent / "manual" / "audio").glob("3-*.wav"))
    probabilities = classifier.predict(clip)
    assert probabilities.shape == (len(TINY_CLASSES),)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
