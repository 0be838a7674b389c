"""The LEP ablation script end to end on the tiny dataset: every run, one table over seeds."""

import subprocess
import sys
from pathlib import Path

import pytest

from scripts import lep_ablation

TINY = ["--set", "data.config=slow", "--set", "data.read_threads=1",
        "--set", "train.global_batch_size=4", "--set", "eval.global_batch_size=4",
        "--set", "train.precise_bn_batches=0"]


def test_ablation_trains_every_run_and_prints_one_table(tiny_dataset, tmp_path, capsys):
    workdir = tmp_path / "ablation"
    args = ["--data_dir", str(tiny_dataset), "--workdir", str(workdir), "--lams", "0.5",
            "--seeds", "3", "--num_steps", "1", "--held_out", "2", *TINY]
    lep_ablation.main(args)
    table = capsys.readouterr().out.strip().splitlines()
    assert table == (workdir / "ablation.md").read_text().strip().splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| baseline", "| LEP λ=0.5"]
    baseline, lep = (row.split(" | ") for row in table[2:])
    assert baseline[5] == "— |" and "(chance 50.0)" in lep[5]
    assert sorted(p.name for p in workdir.iterdir()) == [
        "LEP_lam0.5_seed3", "ablation.md", "baseline_seed3"]
    # A second call reuses the finished runs instead of training again.
    lep_ablation.main(args)
    assert capsys.readouterr().out.strip().splitlines() == table


def test_several_seeds_give_mean_and_sample_std():
    seeds = [{"top1": 0.5, "top5": 1.0, "map": 0.5, "dprime": 1.0, "heldout_top1": 0.0,
              "heldout_chance_top1": 0.5},
             {"top1": 0.7, "top5": 1.0, "map": 0.7, "dprime": 2.0, "heldout_top1": 1.0,
              "heldout_chance_top1": 0.5}]
    row = lep_ablation.markdown_table({"LEP λ=0.5": seeds}).splitlines()[2]
    assert row == ("| LEP λ=0.5 | 60.0 ± 14.1 | 100.0 ± 0.0 | 0.600 ± 0.141 | 1.500 ± 0.707 | "
                   "50.0 ± 70.7 (chance 50.0) |")


@pytest.mark.parametrize("text, expected", [
    ("train.global_batch_size=8", ("train.global_batch_size", 8)),
    ("optim.schedule=cosine", ("optim.schedule", "cosine")),
    ("model.stage_blocks=(1, 2, 1, 1)", ("model.stage_blocks", (1, 2, 1, 1)))])
def test_overrides_parse_literals(text, expected):
    assert lep_ablation.parse_override(text) == expected


def test_override_without_a_value_is_an_error():
    with pytest.raises(Exception, match="KEY=VALUE"):
        lep_ablation.parse_override("train.global_batch_size")


def test_config_files_load_from_any_directory(tmp_path):
    """Run as `python scripts/lep_ablation.py`, `configs` is not on the path until loaded."""
    scripts = Path(lep_ablation.__file__).parent
    config = scripts.parent / "configs" / "demo_lep.py"
    code = (f"import sys; sys.path[0] = {str(scripts)!r}; import lep_ablation; "
            f"print(lep_ablation.load_config({str(config)!r}).lep.enable)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
