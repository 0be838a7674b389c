"""Converting `.pyth` checkpoints and labelling files, hostile and damaged inputs included.

The fixture classifier is built once per module (model construction and compiles are the cost);
the CLIs run in-process except for one subprocess run each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from asf_jax import audio, convert, predict
from asf_jax.checkpoint import CheckpointError, read_meta
from asf_jax.classifier import load_classifier
from asf_jax.pyth import UnsafePickleError

from .conftest import DATA
from .test_pyth import _call, _dict, _global, _value

FIXTURE = DATA / "slowfast_vgg_w8.pyth"
LONG, SHORT = DATA / "long.wav", DATA / "short.wav"
REPO = Path(__file__).parent.parent


def run_cli(module: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def original():
    return load_classifier(FIXTURE)


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory, original) -> Path:
    out = tmp_path_factory.mktemp("convert") / "ckpt"
    convert.convert(FIXTURE, out)
    return out


@pytest.fixture(scope="module")
def converted(converted_dir):
    return load_classifier(converted_dir)


# ------------------------------------------------------------------------------------------------
# Conversion.
# ------------------------------------------------------------------------------------------------


def test_converted_checkpoint_gives_identical_logits(original, converted):
    inputs = np.load(DATA / "slowfast_vgg_w8_io.npz")["input_pathway1"][:, 0]
    np.testing.assert_array_equal(converted.logits(inputs), original.logits(inputs))
    assert converted.class_names == original.class_names
    assert converted.recipe == original.recipe
    assert converted.config == original.config
    assert converted.source == f"converted from {FIXTURE.resolve()}"


def test_checkpoint_loads_from_a_relative_path(converted_dir, converted, monkeypatch):
    monkeypatch.chdir(converted_dir.parent)
    relative = load_classifier(converted_dir.name)
    inputs = np.load(DATA / "slowfast_vgg_w8_io.npz")["input_pathway1"][:, 0]
    np.testing.assert_array_equal(relative.logits(inputs), converted.logits(inputs))


def test_summary_notes_the_assumed_class_order(original, converted_dir):
    text = convert.summary(original, converted_dir, None)
    assert "slowfast, depth 50, width 8, 309 classes, 501,756 parameters" in text
    assert "16000 Hz, 5.119 s clips, 512 frames x 128 mels" in text
    assert "sorted order assumed" in text and text.endswith(convert.ASSUMED_ORDER_NOTE)


def test_classes_file_overrides_names(tmp_path, capsys):
    names = [f"sound {i}" for i in range(309)]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(names) + "\n")
    out = tmp_path / "ckpt"
    assert convert.main(["--pyth", str(FIXTURE), "--out", str(out), "--classes", str(classes)]) == 0
    printed = capsys.readouterr().out
    assert f"from {classes}: sound 0, sound 1, sound 2, ..." in printed
    assert "note:" not in printed
    assert read_meta(out).class_names == names


def test_existing_output_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["--pyth", str(FIXTURE), "--out", str(out), "--overwrite"]
    assert convert.main(args) == 2
    assert_one_line_error(capsys.readouterr().err, str(out), "already exists")
    assert (out / "notes.txt").read_text() == "keep me"


def test_wrong_class_count_is_an_error(tmp_path, capsys):
    count = 5
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(f"c{i}" for i in range(count)))
    out = tmp_path / "ckpt"
    assert convert.main(["--pyth", str(FIXTURE), "--out", str(out), "--classes",
                         str(classes)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(classes), f"{count} class names",
                          "309 classes")
    assert not out.exists()


def test_bad_class_file_is_an_error(tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\ncat\ndog\n")
    assert convert.main(["--pyth", str(FIXTURE), "--out", str(tmp_path / "o"), "--classes",
                         str(classes)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(classes), "duplicate class names")


# ------------------------------------------------------------------------------------------------
# Hostile and damaged checkpoints.
# ------------------------------------------------------------------------------------------------


def malicious_pyth(path: Path, marker: Path) -> Path:
    """The fixture's zip with its data.pkl replaced by a pickle that REDUCEs `os.system`."""
    attack = _call(_global("os", "system"), _value(f"touch {marker}"))
    pickle = b"\x80\x02" + _dict({"model_state": _dict({}), "epoch": attack}) + b"."
    with zipfile.ZipFile(FIXTURE) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            is_pickle = info.filename.endswith("/data.pkl")
            target.writestr(info, pickle if is_pickle else source.read(info))
    return path


def test_malicious_pyth_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = malicious_pyth(tmp_path / "evil.pyth", marker)
    with pytest.raises(UnsafePickleError, match=r"os\.system"):
        load_classifier(evil)
    result = run_cli("asf_jax.convert", "--pyth", evil, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, str(evil), "'os.system'", "not allowed")
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage,reason", [
    (lambda raw: raw[: len(raw) // 2], "truncated or corrupt zip"),
    (lambda raw: b"<html>404 not found</html>", "not a PyTorch zip checkpoint"),
])
def test_damaged_pyth_is_a_clear_error(tmp_path, capsys, damage, reason):
    path = tmp_path / "damaged.pyth"
    path.write_bytes(damage(FIXTURE.read_bytes()))
    assert convert.main(["--pyth", str(path), "--out", str(tmp_path / "out")]) == 2
    assert_one_line_error(capsys.readouterr().err, str(path), reason)


def test_corrupt_checkpoint_names_the_directory(tmp_path, converted_dir):
    damaged = shutil.copytree(converted_dir, tmp_path / "damaged")
    for chunk in (damaged / "model").glob("ocdbt.process_*/d/*"):
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{damaged}.*cannot restore the model"):
        load_classifier(damaged)


def test_predict_cli_with_corrupt_checkpoint(tmp_path, converted_dir):
    damaged = shutil.copytree(converted_dir, tmp_path / "damaged")
    (damaged / "meta" / "metadata").write_text('{"format": "asf_')
    result = run_cli("asf_jax.predict", "--ckpt", damaged, LONG)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, str(damaged), "metadata")


# ------------------------------------------------------------------------------------------------
# Labelling files.
# ------------------------------------------------------------------------------------------------


def test_predict_files_matches_classifier(converted, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file")
    paths = [LONG, tmp_path / "missing.wav", garbage, SHORT]
    results = predict.predict_files(converted, paths, k=4)
    assert [r["file"] for r in results] == list(map(str, paths))
    assert results[1] == {"file": str(paths[1]), "error": "file not found"}
    assert re.match("corrupt or unsupported audio|ffmpeg could not decode", results[2]["error"])
    for result, path, duration in ((results[0], LONG, 10.0), (results[3], SHORT, 3.2)):
        probabilities = converted.predict(path)
        top = result["top"]
        assert [t["label"] for t in top] == [converted.class_names[i]
                                            for i in np.argsort(-probabilities, kind="stable")[:4]]
        scores = [t["probability"] for t in top]
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6
        np.testing.assert_allclose(scores, np.sort(probabilities)[::-1][:4], rtol=1e-6)
        assert result["duration"] == pytest.approx(duration) and "windows" not in result


@pytest.mark.parametrize("path", [LONG, SHORT])
def test_windows_cover_the_file(converted, path):
    clip_seconds = converted.recipe.clip_seconds
    result = predict.predict_file(converted, path, k=3, window_seconds=clip_seconds)
    windows = result["windows"]
    assert windows[0]["start"] == 0 and windows[-1]["end"] == pytest.approx(result["duration"])
    for before, after in zip(windows, windows[1:], strict=False):
        assert before["start"] < after["start"] <= before["end"]
    views, _ = audio.logmel_windows(path, recipe=converted.recipe)
    first = converted.probabilities(views)[0]
    assert windows[0]["top"][0]["probability"] == pytest.approx(first.max(), rel=1e-6)


def test_predict_main_json_and_text(converted, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(predict, "load_classifier", lambda path, classes: converted)
    missing = tmp_path / "missing.wav"
    assert predict.main(["--ckpt", "x", "--json", "--top_k", "2", "--per_window", str(LONG),
                         str(missing)]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert [d["file"] for d in document] == [str(LONG), str(missing)]
    assert len(document[0]["top"]) == 2 and len(document[0]["windows"]) == 2
    assert document[1]["error"] == "file not found"
    assert_one_line_error(captured.err, str(missing), "file not found")

    assert predict.main(["--ckpt", "x", "--top_k", "3", str(LONG)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{LONG} (10.00 s)" and len(lines) == 4
    assert lines[1].startswith("   1.") and lines[1].split()[1].endswith("%")


def test_second_run_is_served_by_the_compilation_cache_with_identical_labels(tmp_path):
    cache = tmp_path / "xla"
    command = [sys.executable, "-m", "asf_jax.predict", "--ckpt",
               str(DATA / "slowfast_vgg_w8.pyth"), "--json", str(DATA / "short.wav")]
    env = os.environ | {"ASF_JAX_CACHE_DIR": str(cache), "JAX_PLATFORMS": "cpu"}
    first = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    entries = sorted(p.name for p in cache.iterdir())
    assert entries and any(name.startswith("jit__forward") for name in entries)
    second = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing compiled again
    assert json.loads(second.stdout) == json.loads(first.stdout)


def test_compilation_cache_location_and_switch(monkeypatch, tmp_path):
    from asf_jax import compile_cache

    monkeypatch.delenv(compile_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.cache_dir() == tmp_path / "asf_jax" / "xla"
    monkeypatch.setenv(compile_cache.ENV, "~/elsewhere")
    assert compile_cache.cache_dir() == Path("~/elsewhere").expanduser()
    for off in ("off", "0", ""):
        monkeypatch.setenv(compile_cache.ENV, off)
        assert compile_cache.cache_dir() is None
