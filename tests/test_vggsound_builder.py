"""The VGG-Sound TFDS builder, built without TensorFlow from manual dirs written by the tests."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asf_jax import audio
from asf_jax.datasets import build, extract, label_index, load_split
from asf_jax.datasets.manual_dir import ManualDirError
from asf_jax.recipe import get_recipe

CLASSES = ["dog barking", "cat meowing", "bee, wasp, etc. buzzing"]
SR = 16000


def _tone(seconds: float, rate: int = SR, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * noise).astype(np.float32)


def _csv(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def _write_manual_dir(root: Path) -> None:
    """Good clips of every unusual kind, and one row or file per kind of bad input."""
    (root / "audio" / "nested").mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    a = root / "audio"
    soundfile.write(a / "-dog_a-1_000010.wav", _tone(6, seed=1), SR, subtype="PCM_16")
    soundfile.write(a / "nested" / "cat_b_000000.wav", _tone(3, freq=660, seed=2), SR,
                    subtype="PCM_16")
    stereo = np.stack([_tone(6, 44100, seed=3), _tone(6, 44100, 880, seed=4)], axis=1)
    soundfile.write(a / "stereo_000005.wav", stereo, 44100, subtype="PCM_16")
    soundfile.write(a / "silent_000001.wav", np.zeros(3 * SR, np.float32), SR, subtype="PCM_16")
    soundfile.write(a / "flac_000002.flac", _tone(6, freq=300, seed=5), SR)
    soundfile.write(a / "short_000003.wav", _tone(1.5, freq=500, seed=6), SR, subtype="PCM_16")
    (a / "corrupt_000004.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 8)
    (a / "empty_000005.wav").write_bytes(b"")
    _csv(root / "vggsound.csv", [
        "-dog_a-1,10,dog barking,train",
        "cat_b,0,cat meowing,train",
        "silent,1,dog barking,train",
        "flac,2,cat meowing,test",
        'stereo,5,"bee, wasp, etc. buzzing",test',
        "short,3,dog barking,test",
        "corrupt,4,dog barking,train",   # corrupt bytes
        "empty,5,cat meowing,train",     # empty file
        "gone,6,cat meowing,train",      # missing file
        "flac,7,unicorn,train",          # unknown label
        "flac,8,dog barking,validation",  # unknown split
        "cat_b,0,cat meowing,test",      # duplicate row
        "cat_b,zero,cat meowing,train",  # malformed row
    ])


EXPECTED_SKIPS = {"unreadable audio": 1, "empty audio file": 1, "missing audio file": 1,
                  "unknown label": 1, "unknown split": 1, "duplicate row": 1, "malformed row": 1}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(manual dir, data dir) of a float32 SlowFast build."""
    manual = tmp_path_factory.mktemp("manual")
    _write_manual_dir(manual)
    data = tmp_path_factory.mktemp("data")
    build.build(str(manual), str(data), workers=1)
    return manual, data


def _by_id(split) -> dict[str, dict]:
    return {example["youtube_id"].decode(): example for example in split.source}


def test_split_counts_and_fields(built: tuple[Path, Path]) -> None:
    _, data = built
    train, test = load_split(data, "train"), load_split(data, "test")
    assert (train.num_examples, test.num_examples) == (3, 3)
    examples = _by_id(train)
    assert sorted(examples) == ["-dog_a-1", "cat_b", "silent"]
    dog = examples["-dog_a-1"]
    assert dog["label"] == CLASSES.index("dog barking")
    assert dog["start_seconds"] == 10
    assert dog["duration"] == pytest.approx(6.0)
    assert dog["filename"].decode() == "audio/-dog_a-1_000010.wav"
    assert dog["views"].shape == (0, 512, 128)
    assert _by_id(test)["stereo"]["label"] == CLASSES.index("bee, wasp, etc. buzzing")


def test_features_match_the_audio_front_end(built: tuple[Path, Path]) -> None:
    manual, data = built
    for split in ("train", "test"):
        for example in load_split(data, split).source:
            path = manual / example["filename"].decode()
            expected = audio.pad_frames(audio.logmel(audio.load_audio(path)), 512)
            assert example["logmel"].dtype == np.float32
            np.testing.assert_allclose(example["logmel"], expected, atol=1e-5)
            if split == "test":
                np.testing.assert_allclose(example["views"], audio.logmel_views(path), atol=1e-5)
    short = _by_id(load_split(data, "test"))["short"]
    assert short["logmel"].shape == (512, 128)


def test_report_lists_every_skip_and_note(built: tuple[Path, Path]) -> None:
    _, data = built
    split = load_split(data, "train")
    report = split.report
    assert report["skipped_by_reason"] == EXPECTED_SKIPS
    assert report["kept"] == {"test": 3, "train": 3}
    assert {s["key"] for s in report["skipped"] if s["reason"] == "missing audio file"} == {
        "gone_000006"}
    assert report["notes"]["resampled from 44100 Hz"] == 1
    assert report["notes"]["downmixed from 2 channels"] == 1
    assert report["notes"]["digital silence"] == 1
    short_note = next(note for note in report["notes"] if note.startswith("shorter"))
    assert report["notes"][short_note] == 3  # 3 s, 3 s (silent) and 1.5 s clips
    files = list(data.glob("vggsound/slowfast/*/build_report.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["skipped_by_reason"] == EXPECTED_SKIPS


def test_load_split_needs_only_the_data_dir(built: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    _, data = built
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    split = load_split(copy, "test")
    assert split.class_names == CLASSES
    assert split.recipe == get_recipe("slowfast")
    assert split.report["num_skipped"] == sum(EXPECTED_SKIPS.values())
    with pytest.raises(FileNotFoundError, match="slow"):
        load_split(copy, "test", config="slow")


@pytest.fixture
def no_feature_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(task: extract.Task) -> None:
        raise AssertionError("feature extraction started")
    monkeypatch.setattr(extract, "extract", fail)


def _audio_dir(root: Path, stems: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        soundfile.write(root / f"{stem}.wav", _tone(1.0), SR, subtype="PCM_16")


@pytest.mark.usefixtures("no_feature_work")
@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("not_csv", "does not look like the VGG-Sound list"),
    ("no_audio", "no audio files"),
    ("no_match", "none of the 2 rows"),
    ("pkl_only", "never loaded: unpickling can execute arbitrary code"),
    ("repeated_class", "classes.txt: duplicate class names \\['dog barking'\\]"),
    ("empty_classes", "classes.txt: class list is empty"),
])
def test_clear_errors_before_feature_work(tmp_path: Path, case: str, message: str) -> None:
    manual = tmp_path / "manual"
    if case != "missing":
        manual.mkdir()
    if case in ("not_csv", "no_audio", "no_match"):
        _audio_dir(manual, ["abc_000001"] if case != "no_audio" else [])
        rows = ["abc,1,dog barking,train", "def,2,dog barking,test"]
        if case == "not_csv":
            rows = ["<html><body>", "not found", "abc,1,dog barking,train"]
        _csv(manual / "vggsound.csv", rows if case != "no_match" else
             ["xyz,1,dog barking,train", "uvw,2,dog barking,test"])
    if case == "no_audio":
        (manual / "notes.txt").write_text("audio still downloading")
    if case in ("repeated_class", "empty_classes"):
        _audio_dir(manual, ["abc_000001"])
        _csv(manual / "vggsound.csv", ["abc,1,dog barking,train"])
        names = "dog barking\ncat meowing\ndog barking\n" if case == "repeated_class" else "\n"
        (manual / "classes.txt").write_text(names)
    if case == "pkl_only":
        _audio_dir(manual, ["abc_000001"])
        (manual / "vggsound.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ManualDirError, match=message):
        build.build(str(manual), str(tmp_path / "data"), workers=1)


def test_split_lists_layout_match_by_stem(tmp_path: Path) -> None:
    manual = tmp_path / "manual"
    _audio_dir(manual / "clips", ["a-b_c_000030", "-xy_000000", "zz_000005"])
    (manual / "classes.txt").write_text("dog barking\ncat meowing\n")
    _csv(manual / "train.csv", ['"a-b_c_000030.mp4",dog barking', '"-xy_000000.mp4",cat meowing'])
    _csv(manual / "test.csv", ['"zz_000005.mp4",cat meowing', "oops"])
    (manual / "vggsound.pkl").write_bytes(b"never read")
    build.build(str(manual), str(tmp_path / "data"), workers=1)
    train = load_split(tmp_path / "data", "train")
    test = load_split(tmp_path / "data", "test")
    assert sorted(_by_id(train)) == ["-xy", "a-b_c"]
    assert _by_id(train)["a-b_c"]["start_seconds"] == 30
    assert _by_id(test)["zz"]["filename"].decode() == "clips/zz_000005.wav"
    assert train.report["annotation"] == "train.csv + test.csv"
    assert train.report["skipped_by_reason"] == {"malformed row": 1}
    assert train.class_names == ["dog barking", "cat meowing"]


def test_float16_round_trip_with_worker_processes(tmp_path: Path) -> None:
    manual = tmp_path / "manual"
    manual.mkdir()
    soundfile.write(manual / "aa_000000.wav", _tone(6, freq=220), SR, subtype="PCM_16")
    soundfile.write(manual / "bb_000001.flac", _tone(3, freq=880), SR)
    _csv(manual / "vggsound.csv", ["aa,0,dog barking,test", "bb,1,dog barking,train"])
    build.build(str(manual), str(tmp_path / "data"), float16=True, workers=2)
    with pytest.raises(FileNotFoundError, match="slowfast_float16"):
        load_split(tmp_path / "data", "test")
    test = load_split(tmp_path / "data", "test", config="slowfast_float16")
    assert len(test.class_names) == 309  # no classes.txt: the shipped VGG-Sound classes
    example = test.source[0]
    path = manual / "aa_000000.wav"
    expected = audio.logmel(audio.load_audio(path))
    assert example["logmel"].dtype == np.float16 and example["views"].dtype == np.float16
    # float16 keeps 11 significant bits: half a unit in the last place is 2**-11 relative.
    np.testing.assert_allclose(example["logmel"], expected, rtol=2**-11, atol=1e-4)
    np.testing.assert_allclose(example["views"], audio.logmel_views(path), rtol=2**-11, atol=1e-4)
    assert np.abs(example["logmel"].astype(np.float32) - expected).max() > 0  # really float16


def test_cli_builds_the_dummy_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dummy = Path(build.__file__).parent / "vggsound" / "dummy_data"
    args = ["--manual_dir", str(dummy), "--data_dir", str(tmp_path), "--config", "slow",
            "--workers", "1"]
    assert build.main(args) == 0
    assert "kept 4 clips (test 2, train 2); skipped 0" in capsys.readouterr().out
    split = load_split(tmp_path, "test", config="slow")
    assert split.num_examples == 2 and split.recipe == get_recipe("slow")
    assert split.source[0]["views"].shape == (2, 128, 128)
    (tmp_path / "empty").mkdir()
    assert build.main(["--manual_dir", str(tmp_path / "empty"), "--data_dir", str(tmp_path)]) == 2
    assert "is empty" in capsys.readouterr().err


@pytest.mark.parametrize("split", ["train", "test", "train[3:10]", "train[25%:75%]"])
def test_stored_label_index_matches_the_records(tiny_dataset: Path, split: str) -> None:
    data = load_split(tiny_dataset, split, "slow")
    scanned = [int(data.source[i]["label"]) for i in range(data.num_examples)]
    assert len(set(scanned)) > 1  # the record order is not trivially one class
    np.testing.assert_array_equal(label_index.stored_labels(data.info, split), scanned)
    np.testing.assert_array_equal(data.labels(), scanned)


def test_a_wrong_or_missing_label_index_falls_back_to_reading(
        tiny_dataset: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = load_split(tiny_dataset, "train", "slow")
    scanned = label_index.scan_labels(data.source)
    index = data.info.metadata[label_index.METADATA_KEY]
    index["train"] = [(label + 1) % 3 for label in index["train"]]
    np.testing.assert_array_equal(data.labels(), scanned)
    assert "disagrees with its records" in caplog.text
    del index["train"]
    np.testing.assert_array_equal(data.labels(), scanned)
    assert "No label index for split 'train'" in caplog.text


def test_no_tensorflow_imported() -> None:
    assert "tensorflow" not in sys.modules
