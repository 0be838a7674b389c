"""Cross-validation end to end on a tiny dataset built with folds: every fold trained on the
others and tested on itself, one table with the linear baseline, finished folds reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from asf_jax import cross_validate
from tests.test_train import tiny_config


def test_every_fold_is_trained_tested_and_reused(tiny_folds_dataset: Path, tmp_path: Path
                                                 ) -> None:
    config = tiny_config(tiny_folds_dataset, num_steps=2, precise_bn_batches=0)
    changes = cross_validate.parse_settings(["data.name=tinyfolds", "train.log_every_steps=2"])
    table = cross_validate.cross_validate(config, tmp_path, str(tiny_folds_dataset), 2,
                                          changes=changes)
    lines = table.splitlines()
    assert lines == (tmp_path / "cross_validation.md").read_text().strip().splitlines()
    assert lines[0] == ("| fold | top-1 % | top-5 % | mAP | d′ | baseline top-1 % | "
                        "baseline mAP |")
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| fold1", "| fold2",
                                                            "| mean ± std"]
    assert all(" ± " in cell for cell in lines[4].split(" | ")[1:])
    results = {fold: sorted((tmp_path / fold / "eval").glob("metrics_step*.json"))
               for fold in ("fold1", "fold2")}
    assert all(len(files) == 1 for files in results.values())
    written = {fold: files[0].stat().st_mtime_ns for fold, files in results.items()}
    assert (tmp_path / "fold1" / "baseline.json").is_file()
    # A rerun reuses both finished folds: same table, nothing evaluated again.
    assert cross_validate.cross_validate(config, tmp_path, str(tiny_folds_dataset), 2,
                                         changes=changes) == table
    assert {fold: next((tmp_path / fold / "eval").glob("metrics_step*.json")).stat().st_mtime_ns
            for fold in written} == written


def test_fold_splits_and_settings() -> None:
    assert cross_validate.fold_splits(2, 4) == ("fold1+fold3+fold4", "fold2")
    with pytest.raises(ValueError, match="not in 1..3"):
        cross_validate.fold_splits(4, 3)
    assert cross_validate.parse_settings(["a.b=3", "c=(1, 1)", "d=esc50", "e=True"]) == {
        "a.b": 3, "c": (1, 1), "d": "esc50", "e": True}
    with pytest.raises(ValueError, match="key=value"):
        cross_validate.parse_settings(["nothing"])
