"""The LEP ablation end to end on the tiny dataset (every run, one table over seeds), its table
cells, and configs that load by name or path from any directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asf_jax import configs, experiments
from asf_jax.lep_ablation import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--data_config", "slow", "--config.data.read_threads=1",
        "--config.train.global_batch_size=4", "--config.eval.global_batch_size=4",
        "--config.train.precise_bn_batches=0"]


def ablation(args: list[str]) -> str:
    result = subprocess.run([sys.executable, "scripts/lep_ablation.py", *args], cwd=ROOT,
                            capture_output=True, text=True, check=False,
                            env=os.environ | {"JAX_PLATFORMS": "cpu",
                                              "JAX_DISABLE_MOST_OPTIMIZATIONS": "true"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_ablation_trains_every_run_and_prints_one_table(tiny_dataset, tmp_path):
    workdir = tmp_path / "ablation"
    args = ["--data_dir", str(tiny_dataset), "--workdir", str(workdir), "--lams", "0.5",
            "--losses", "mse,cosine", "--seeds", "3", "--num_steps", "1", "--held_out", "2",
            *TINY]
    table = ablation(args).strip().splitlines()[-5:]
    assert table == (workdir / "ablation.md").read_text().strip().splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| baseline", "| LEP glove-6b-50d mse λ=0.5", "| LEP glove-6b-50d cosine λ=0.5"]
    baseline, mse, cosine = (row.split(" | ") for row in table[2:])
    assert baseline[5:] == ["—", "— |"] and "(chance 50.0)" in mse[5] and cosine[6] != "— |"
    assert sorted(p.name for p in workdir.iterdir()) == [
        "LEP_glove-6b-50d_cosine_lam0.5_seed3", "LEP_glove-6b-50d_mse_lam0.5_seed3", "ablation.md",
        "baseline_seed3"]
    # A second call reuses the finished runs instead of training again.
    assert ablation(args).strip().splitlines()[-5:] == table


def test_several_seeds_give_mean_and_sample_std():
    seeds = [{"top1": 0.5, "top5": 1.0, "map": 0.5, "dprime": 1.0, "heldout_top1": 0.0,
              "heldout_chance_top1": 0.5},
             {"top1": 0.7, "top5": 1.0, "map": 0.7, "dprime": 2.0, "heldout_top1": 1.0,
              "heldout_chance_top1": 0.5}]
    seeds[0]["gzsl_h"], seeds[1]["gzsl_h"] = 0.1, 0.3
    row = experiments.markdown_table({"LEP λ=0.5": seeds}, COLUMNS).splitlines()[2]
    assert row == ("| LEP λ=0.5 | 60.0 ± 14.1 | 100.0 ± 0.0 | 0.600 ± 0.141 | 1.500 ± 0.707 | "
                   "50.0 ± 70.7 (chance 50.0) | 20.0 ± 14.1 |")


def test_variant_changes_only_the_named_fields():
    config = configs.load_config("demo")
    changed = experiments.variant(config, {"lep.lam": 0.25, "seed": 4})
    assert (changed.lep.lam, changed.seed) == (0.25, 4)
    assert (config.lep.lam, config.seed) == (0.5, 0)
    assert changed.model == config.model


def test_configs_load_by_name_or_path_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert configs.load_config("demo_lep").lep.enable
    assert configs.load_config("configs/demo_lep.py").lep.enable  # as the docs write it
    own = tmp_path / "mine.py"
    own.write_text("from asf_jax.configs import demo\n\n\ndef get_config(arg=None):\n"
                   "    config = demo.get_config()\n    config.seed = int(arg or 7)\n"
                   "    return config\n")
    assert configs.load_config(own).seed == 7
    assert configs.load_config(f"{own}:3").seed == 3
    with pytest.raises(FileNotFoundError, match="packaged configs: demo, demo_lep"):
        configs.config_path("nosuch")
