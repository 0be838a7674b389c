"""The LEP ablation end to end on the tiny dataset (every run, one table over seeds), its table
cells, and configs that load by name or path from any directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asf_jax import configs, experiments
from asf_jax.lep_ablation import COLUMNS, ablation_runs, parse_template_set

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


def test_prompt_sets_are_an_axis_of_the_sentence_encoders_only(tmp_path):
    sets = [parse_template_set("{label}"), parse_template_set("the sound of {label} | a {label}")]
    runs = ablation_runs(configs.load_config("demo"), tmp_path, [0.5], [1],
                         encoders=["glove-6b-50d", "minilm"], losses=["cosine"],
                         template_sets=sets, data_dir="d", data_config="slow", num_epochs=1,
                         num_steps=None, held_out=0, clip_norm=1.0)
    assert [(r.name, r.config.lep.encoder, r.config.lep.templates) for r in runs] == [
        ("baseline", "glove-6b-50d", ()),
        ("LEP glove-6b-50d cosine λ=0.5", "glove-6b-50d", ()),
        ("LEP minilm [{label}] cosine λ=0.5", "minilm", ("{label}",)),
        ("LEP minilm [the sound of {label} | a {label}] cosine λ=0.5", "minilm",
         ("the sound of {label}", "a {label}"))]
    assert len({r.workdir for r in runs}) == 4
    with pytest.raises(ValueError, match="exactly once"):
        parse_template_set("{label}|the sound")


def test_module_runs_as_a_command():
    """`python -m asf_jax.lep_ablation` parses its flags (absl's help exits with status 1)."""
    result = subprocess.run([sys.executable, "-m", "asf_jax.lep_ablation", "--helpfull"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert "--templates" in result.stdout, result.stderr[-2000:]


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
