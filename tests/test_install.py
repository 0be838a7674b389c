"""A clean install: the wheel builds without packaging warnings, carries every data file, and
works from outside the repository in a fresh virtual environment (predict, configs by name).

The fresh venv gets the wheel only; its dependencies come from this environment's site-packages
through a path file (so the test needs no download), while the editable install of this
checkout stays invisible to it.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("wheel")
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(ROOT)],
                 cwd=out)
    return next(out.glob("asf_jax-*.whl")), result.stdout + result.stderr


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")], cwd=root)
    python = root / "env" / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", str(wheel[0])], cwd=root)
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                                           "'purelib'))"], cwd=root).stdout.strip())
    ours = {sysconfig.get_path("purelib"), *site.getsitepackages()}
    (purelib / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def test_wheel_builds_without_warnings_and_carries_the_data(wheel):
    path, log = wheel
    assert "warning" not in log.lower(), log
    names = set(zipfile.ZipFile(path).namelist())
    for name in ("asf_jax/data/vggsound_classes.txt", "asf_jax/data/vggsound_glove50.npz",
                 "asf_jax/configs/slowfast_lep.py", "asf_jax/explain/cli.py",
                 "asf_jax/benchmark/cli.py", "asf_jax/benchmark/torch_slowfast.py",
                 "asf_jax/datasets/demo/cli.py", "asf_jax/embed_labels.py",
                 "asf_jax/datasets/vggsound/dummy_data/vggsound.csv"):
        assert name in names, name
    assert any(n.startswith("asf_jax/datasets/vggsound/dummy_data/audio/") for n in names)
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)


def test_installed_package_predicts_and_loads_configs_outside_the_repo(venv, tmp_path):
    located = run([str(venv), "-c", "import asf_jax; print(asf_jax.__file__)"], cwd=tmp_path)
    assert str(venv.parents[1]) in located.stdout and str(ROOT) not in located.stdout
    result = run([str(venv.parent / "asf-jax-predict"), "--ckpt",
                  str(DATA / "slowfast_vgg_w8.pyth"), "--json", "--top_k", "2",
                  str(DATA / "short.wav")], cwd=tmp_path)
    labels = json.loads(result.stdout)[0]
    assert len(labels["top"]) == 2 and labels["duration"] > 0
    config = run([str(venv), "-c", "from asf_jax import configs; c = configs.load_config("
                                   "'configs/slowfast_lep.py'); print(c.lep.enable, "
                                   "c.lep.embeddings.endswith('vggsound_glove50.npz'))"],
                 cwd=tmp_path)
    assert config.stdout.split() == ["True", "True"]
    help_text = subprocess.run([str(venv.parent / "asf-jax-train"), "--help"], cwd=tmp_path,
                               capture_output=True, text=True, check=False).stdout
    assert "--config: Config name (demo, demo_lep" in help_text and "--workdir" in help_text
    for script, flag in (("asf-jax-benchmark", "--vs_torch"), ("asf-jax-demo-dataset", "--seed"),
                         ("asf-jax-embed-labels", "--encoder")):
        assert flag in run([str(venv.parent / script), "--help"], cwd=tmp_path).stdout, script
