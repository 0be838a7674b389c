"""Shared test settings: cheap XLA compiles, the shipped fixtures, and a tiny built dataset."""

import os
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile

from asf_jax.datasets.synthetic import SyntheticClip, write_manual_dir

jax.config.update("jax_disable_most_optimizations", True)

DATA = Path(__file__).parent / "data"
TINY_CLASSES = ("beep", "hiss", "tick")


def _tiny_clip(label: str, rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """Three easily told apart sounds in light noise."""
    t = np.arange(int(16000 * seconds)) / 16000
    noise = 0.02 * rng.standard_normal(t.size)
    if label == "beep":
        signal = 0.5 * np.sin(2 * np.pi * rng.uniform(600, 900) * t) * (np.sin(2 * np.pi * 3 * t)
                                                                        > 0)
    elif label == "hiss":
        signal = 0.3 * rng.standard_normal(t.size)
    else:
        signal = np.zeros_like(t)
        signal[:: int(16000 / rng.uniform(3, 5))] = 0.9
    return (signal + noise).astype(np.float32)


def write_tiny_manual_dir(root: Path, train_per_class: int = 4, test_per_class: int = 2) -> Path:
    """A manual directory in the VGG-Sound layout: vggsound.csv, classes.txt and 3-s WAVs."""
    rng = np.random.default_rng(0)
    clips = [SyntheticClip(f"{label[:4]}-{index:06d}"[:11].ljust(11, "_"), 10, label,
                           "train" if index < train_per_class else "test", _tiny_clip(label, rng))
             for label in TINY_CLASSES for index in range(train_per_class + test_per_class)]
    return write_manual_dir(root, clips, TINY_CLASSES)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A built dataset (Slow-only recipe: 128 frames per clip keeps every test model cheap)."""
    from asf_jax.datasets.build import build

    root = tmp_path_factory.mktemp("tiny")
    manual = write_tiny_manual_dir(root / "manual")
    build(str(manual), str(root / "tfds"), config="slow", workers=1)
    return root / "tfds"


def write_esc50_like(root: Path, folds: int = 3, per_class_and_fold: int = 2) -> Path:
    """ESC-50's layout: audio/<fold>-<id>-A-<target>.wav and meta/esc50.csv (filename, fold,
    target, category, esc10, src_file, take), with the tiny classes."""
    rng = np.random.default_rng(1)
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, folds + 1):
        for target, label in enumerate(TINY_CLASSES):
            for index in range(per_class_and_fold):
                source = 100 * fold + 10 * target + index
                name = f"{fold}-{source}-A-{target}.wav"
                soundfile.write(root / "audio" / name, _tiny_clip(label, rng, 1.0), 16000)
                rows.append(f"{name},{fold},{target},{label},False,{source},A")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_folds_dataset(tmp_path_factory) -> Path:
    """An ESC-50-like dataset with 3 folds built as "tinyfolds" (Slow-only recipe)."""
    from asf_jax.datasets.build import build
    from asf_jax.datasets.custom_dir import Layout

    root = tmp_path_factory.mktemp("tiny_folds")
    manual = write_esc50_like(root / "manual")
    build(str(manual), str(root / "tfds"), config="slow", workers=1, name="tinyfolds",
          layout=Layout("meta/esc50.csv"))
    return root / "tfds"


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """Identical programs compiled by several tests (e.g. a resumed run) are compiled once."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield


os.environ.setdefault("TQDM_DISABLE", "1")
