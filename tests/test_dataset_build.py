"""How a dataset is built: in parallel, from cached features, after a kill, one at a time."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from array_record.python import array_record_module

from asf_jax.datasets import build, extract, load_split, spill
from asf_jax.datasets.clip_cache import ClipCache
from asf_jax.datasets.manual_dir import Clip
from asf_jax.datasets.reader import dataset_dir
from asf_jax.datasets.synthetic import SyntheticClip, write_audio, write_manual_dir
from asf_jax.recipe import SLOW

REPO = Path(__file__).resolve().parent.parent
CONFIG = "slow"  # 128 frames per clip: cheap


def _manual_dir(root: Path) -> Path:
    """8 short clips of two classes, 2 of them test clips (which carry views), one stereo 44.1k."""
    rng = np.random.default_rng(0)
    clips = [SyntheticClip(f"clip{i:02d}", i, "tone" if i % 2 else "noise",
                           "test" if i >= 6 else "train",
                           0.3 * rng.standard_normal(24000 + 800 * i))
             for i in range(7)]
    clips.append(SyntheticClip("stereo", 7, "tone", "test",
                               0.2 * rng.standard_normal((66150, 2)), sample_rate=44100))
    return write_manual_dir(root, clips, ["noise", "tone"])


def _records(data_dir: Path) -> dict[str, list[bytes]]:
    """The serialized examples of each array_record file, in file order."""
    folder = dataset_dir(data_dir, CONFIG)
    return {path.name: array_record_module.ArrayRecordReader(str(path)).read_all()
            for path in sorted(folder.glob("*.array_record*"))}


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _manual_dir(tmp_path_factory.mktemp("manual"))


@pytest.fixture(scope="module")
def clean_build(manual: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data dir of a build in this process, without a cache."""
    data = tmp_path_factory.mktemp("clean")
    build.build(str(manual), str(data), config=CONFIG, workers=1, cache=False)
    return data


@pytest.fixture(scope="module")
def clean(clean_build: Path) -> dict[str, list[bytes]]:
    return _records(clean_build)


def test_records_are_uncompressed(clean_build: Path, clean: dict[str, list[bytes]]) -> None:
    assert sum(len(records) for records in clean.values()) == 8
    for path in dataset_dir(clean_build, CONFIG).glob("*.array_record*"):
        options = array_record_module.ArrayRecordReader(str(path)).writer_options_string()
        assert "uncompressed" in options and "group_size:1" in options
    assert not (clean_build / "vggsound" / CONFIG / build.CACHE_FOLDER).exists()


def test_two_workers_write_the_same_records_as_one(manual: Path, clean: dict[str, list[bytes]],
                                                   tmp_path: Path) -> None:
    build.build(str(manual), str(tmp_path), config=CONFIG, workers=2, cache=False)
    assert _records(tmp_path) == clean


def test_cached_features_give_identical_records(manual: Path, clean: dict[str, list[bytes]],
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    build.build(str(manual), str(tmp_path), config=CONFIG, workers=1, keep_cache=True)
    cache = tmp_path / "vggsound" / CONFIG / build.CACHE_FOLDER
    assert len(list(cache.glob("*.npz"))) == 8
    assert _records(tmp_path) == clean

    def no_decoding(task: extract.Task) -> None:
        raise AssertionError(f"{task.filename} was decoded although it is in the cache")

    monkeypatch.setattr(extract, "featurise", no_decoding)
    builder = build.build(str(manual), str(tmp_path), config=CONFIG, workers=1, overwrite=True)
    assert builder.report.reused == 8
    assert _records(tmp_path) == clean
    assert not cache.exists()  # removed after success


def test_a_split_spilled_to_disk_gives_the_same_records_without_tensorflow(
        manual: Path, clean: dict[str, list[bytes]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Over `MAX_MEM_BUFFER_SIZE` (1 GB: 2,000 10-s clips) TFDS sorts through bucket files (the
    test venv has no TensorFlow, which TFDS's own buckets import)."""
    from tensorflow_datasets.core import shuffle

    written = []
    monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 1)
    monkeypatch.setattr(spill.FileBucket, "del_file", lambda bucket: written.append(bucket))
    build.build(str(manual), str(tmp_path), config=CONFIG, workers=1, cache=False)
    assert _records(tmp_path) == clean
    assert sum(len(bucket) for bucket in written) == 8  # every clip went through a bucket file


def test_a_changed_audio_file_misses_the_cache(tmp_path: Path) -> None:
    manual = _manual_dir(tmp_path / "manual")
    data = tmp_path / "data"
    build.build(str(manual), str(data), config=CONFIG, workers=1, keep_cache=True)
    changed = manual / "clip03_000003.wav"
    mtime = changed.stat().st_mtime_ns
    write_audio(changed, np.zeros(20000), 16000)
    os.utime(changed, ns=(mtime, mtime))  # the same modification time: the size gives it away
    builder = build.build(str(manual), str(data), config=CONFIG, workers=1, overwrite=True)
    assert builder.report.reused == 7
    assert builder.report.notes["digital silence"] == 1
    durations = {example["youtube_id"]: example["duration"]
                 for example in load_split(data, "train", CONFIG).source}
    assert durations[b"clip03"] == pytest.approx(20000 / 16000)


_KILLED_BUILD = """
import os, sys
from asf_jax.datasets import build, extract
featurise, done = extract.featurise, []
def featurise_until_killed(task):
    if len(done) == int(sys.argv[3]):
        os._exit(9)  # as SIGKILL: no exception handler or `finally` runs
    done.append(task)
    return featurise(task)
extract.featurise = featurise_until_killed
build.build(sys.argv[1], sys.argv[2], config="slow", workers=1)
"""


def test_a_killed_build_is_resumed(manual: Path, clean: dict[str, list[bytes]], tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    config_dir = tmp_path / "vggsound" / CONFIG
    killed = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(manual), str(tmp_path), "5"],
                            env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == 9, killed.stderr[-3000:]
    stale = list(config_dir.glob("incomplete.*"))
    assert len(stale) == 1
    assert len(list((config_dir / build.CACHE_FOLDER).glob("*.npz"))) == 5

    with caplog.at_level(logging.WARNING):
        builder = build.build(str(manual), str(tmp_path), config=CONFIG, workers=1)
    assert f"removing {stale[0]}" in caplog.text and "left by an interrupted build" in caplog.text
    assert builder.report.reused == 5
    assert "features of 5 clips reused" in builder.report.summary()
    assert _records(tmp_path) == clean
    assert not list(config_dir.glob("incomplete.*"))
    assert not (config_dir / build.CACHE_FOLDER).exists()


def test_a_second_build_of_the_same_config_is_refused(manual: Path, tmp_path: Path) -> None:
    config_dir = tmp_path / "vggsound" / CONFIG
    (config_dir / "incomplete.ABCDEF_1.0.0").mkdir(parents=True)
    with build.exclusive_build(config_dir):
        with pytest.raises(build.BuildInProgressError, match="another build of slow"):
            build.build(str(manual), str(tmp_path), config=CONFIG, workers=1)
    assert (config_dir / "incomplete.ABCDEF_1.0.0").is_dir()  # the running build's: kept


def test_unreadable_or_foreign_cache_files_are_recomputed(manual: Path, tmp_path: Path) -> None:
    cache = ClipCache(tmp_path, "1.0.0")
    clip = Clip("clip06", 6, "noise", "test", manual / "clip06_000006.wav", "vggsound.csv:7")
    task = extract.Task(clip, 0, "clip06_000006.wav", SLOW, False, cache)
    assert cache.load(task) is None
    features = extract.featurise(task)
    cache.save(task, features)
    loaded = cache.load(task)
    np.testing.assert_array_equal(loaded.views, features.views)
    assert loaded.views.shape == (2, 128, 128) and loaded.notes == features.notes
    float16 = extract.Task(task.clip, 0, task.filename, SLOW, True, cache)
    other_version = extract.Task(task.clip, 0, task.filename, SLOW, False, ClipCache(tmp_path, "2"))
    assert cache.load(float16) is None and other_version.cache.load(other_version) is None
    cache.path(task).write_bytes(b"PK\x03\x04 truncated")
    assert cache.load(task) is None
    cache.save(float16, features)  # float32 arrays under a float16 key: rejected
    assert cache.load(float16) is None


def test_a_kept_cache_survives_a_run_that_finds_the_dataset_built(manual: Path,
                                                                  tmp_path: Path) -> None:
    build.build(str(manual), str(tmp_path), config=CONFIG, workers=1, keep_cache=True)
    builder = build.build(str(manual), str(tmp_path), config=CONFIG, workers=1)
    assert builder.report is None  # already built: nothing ran
    assert len(list((tmp_path / "vggsound" / CONFIG / build.CACHE_FOLDER).glob("*.npz"))) == 8
