"""The builder under Apache Beam's DirectRunner writes what a local build writes.

Needs apache-beam (`pip install -e '.[beam]'`), skipped without it; no TensorFlow either way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from asf_jax.datasets import beam_clips, build, extract, load_split
from asf_jax.datasets.manual_dir import Clip
from asf_jax.recipe import get_recipe
from tests.test_vggsound_builder import EXPECTED_SKIPS, _write_manual_dir

pytest.importorskip("apache_beam")


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(local data dir, Beam data dir) built from one manual dir with every kind of skip."""
    manual = tmp_path_factory.mktemp("manual")
    _write_manual_dir(manual)
    local, beam = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("beam")
    build.build(str(manual), str(local), workers=1)
    build.build(str(manual), str(beam), beam_pipeline_options="runner=DirectRunner")
    return local, beam


@pytest.mark.parametrize("split", ["train", "test"])
def test_same_records_in_the_same_order(builds: tuple[Path, Path], split: str) -> None:
    """Bit for bit: both builds run `extract` in this process (BLAS threads change the last
    float bit, as between local builds with 1 and 2 workers)."""
    local, beam = (load_split(data, split) for data in builds)
    assert beam.num_examples == local.num_examples == 3
    assert beam.class_names == local.class_names
    for index, (expected, got) in enumerate(zip(local.source, beam.source, strict=True)):
        assert got.keys() == expected.keys()
        for field, value in expected.items():
            assert np.asarray(got[field]).dtype == np.asarray(value).dtype, (index, field)
            np.testing.assert_array_equal(got[field], value, err_msg=f"{index} {field}")


def test_same_report_and_label_index(builds: tuple[Path, Path]) -> None:
    local, beam = (load_split(data, "train") for data in builds)
    assert beam.report["skipped_by_reason"] == EXPECTED_SKIPS  # decode failures included
    assert beam.report == local.report
    assert beam.info.metadata["label_index"] == local.info.metadata["label_index"]
    local_dir, beam_dir = (data / "vggsound/slowfast/1.0.0" for data in builds)
    assert sorted(p.name for p in beam_dir.iterdir()) == sorted(
        p.name for p in local_dir.iterdir())  # the task and outcome files are gone
    for name in ("build_report.json", "metadata.json", "dataset_info.json"):
        assert (beam_dir / name).read_text() == (local_dir / name).read_text(), name


def test_tasks_of_one_split_share_one_recipe(tmp_path: Path) -> None:
    clip = Clip("abc", 1, "dog barking", "train", tmp_path / "abc_000001.wav", "vggsound.csv:1")
    task = extract.Task(clip, 0, "abc_000001.wav", get_recipe("slowfast"), False)
    with pytest.raises(ValueError, match="one recipe and precision"):
        beam_clips.extract_clips([task, dataclasses.replace(task, float16=True)],
                                 beam_clips.BeamFiles.next_to(tmp_path, "train"))
