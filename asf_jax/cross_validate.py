"""K-fold cross-validation in one command: train on K − 1 folds, test on the held-out one, K times.

    python scripts/cross_validate.py --config finetune --data_dir ~/tensorflow_datasets \\
        --name esc50 --folds 5 --workdir ~/runs/esc50_cv [--set train.num_epochs=30 ...]

The dataset must have been built with folds (splits `fold1` ... `foldK`, e.g. from ESC-50's fold
column). Fold k trains on the other folds (`fold1+...`) and is evaluated on `foldk`, in
`WORKDIR/fold<k>`; rerunning resumes unfinished folds and reuses finished ones. `--set key=value`
(repeatable; values read as Python literals, else as text) and `--config.key=value` both change
the config of every fold. Beside each fold's numbers stands the linear baseline on the same split
(logistic regression on log-mel statistics, asf_jax/baseline.py). Prints a markdown table (also
WORKDIR/cross_validation.md): top-1, top-5, mAP, d′ and the baseline's top-1 and mAP per fold,
then mean ± std over the folds.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import ml_collections
from absl import app, flags

from asf_jax import baseline, configs, experiments

FLAGS = flags.FLAGS


def define_flags() -> None:
    configs.define_config_flag()
    flags.DEFINE_string("data_dir", None, "Data dir of the dataset built with folds.")
    flags.DEFINE_string("name", None, "The dataset's name in the data dir (default: the "
                        "config's data.name).")
    flags.DEFINE_multi_string("set", [], "key=value: a config change for every fold, e.g. "
                              "train.num_epochs=30 (repeatable).")
    flags.DEFINE_integer("folds", 5, "Number of folds (splits fold1 ... foldK).")
    flags.DEFINE_string("workdir", None, "One sub-directory per fold, and cross_validation.md.")
    flags.DEFINE_bool("baseline", True, "Also fit the linear baseline on every fold's split.")
    flags.mark_flags_as_required(["config", "data_dir", "workdir"])


def fold_splits(fold: int, num_folds: int) -> tuple[str, str]:
    """(train split, test split) of fold `fold` (1-based): the others, and the fold itself."""
    if not 1 <= fold <= num_folds:
        raise ValueError(f"fold {fold} is not in 1..{num_folds}")
    others = [f"fold{k}" for k in range(1, num_folds + 1) if k != fold]
    return "+".join(others), f"fold{fold}"


def parse_settings(settings: list[str]) -> dict[str, object]:
    """`["train.num_steps=10", "data.name=esc50"]` -> {"train.num_steps": 10, "data.name":
    "esc50"}: each value a Python literal (number, bool, tuple) where it is one, else text."""
    changes: dict[str, object] = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {setting!r}: expected key=value")
        try:
            changes[key.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            changes[key.strip()] = text
    return changes


def fold_runs(config: ml_collections.ConfigDict, workdir: Path, data_dir: str, num_folds: int,
              changes: dict[str, object] | None = None) -> list[experiments.Run]:
    """One run per fold, with `changes` (dotted config fields) applied to every fold."""
    if num_folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {num_folds}")
    runs = []
    for fold in range(1, num_folds + 1):
        train_split, eval_split = fold_splits(fold, num_folds)
        fold_changes = {**(changes or {}), "data.data_dir": data_dir,
                        "data.train_split": train_split, "data.eval_split": eval_split}
        runs.append(experiments.Run(f"fold{fold}", experiments.variant(config, fold_changes),
                                    workdir / f"fold{fold}"))
    return runs


def baseline_results(run: experiments.Run) -> experiments.Results:
    """The linear baseline on a run's splits, computed once and kept in its workdir."""
    path = run.workdir / "baseline.json"
    if path.is_file():
        return json.loads(path.read_text())
    data = run.config.data
    results = baseline.run_on_dataset(data.data_dir, data.train_split, data.eval_split,
                                      data.config, name=data.name)
    run.workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    return results


COLUMNS = (*experiments.STANDARD_COLUMNS,
           experiments.metric_column("baseline top-1 %", "baseline_top1", 100, 1),
           experiments.metric_column("baseline mAP", "baseline_map"))


def with_baseline(results: experiments.Results, run: experiments.Run) -> experiments.Results:
    baseline_run = baseline_results(run)
    return results | {"baseline_top1": baseline_run["top1"], "baseline_map": baseline_run["map"]}


def cross_validate(config: ml_collections.ConfigDict, workdir: Path, data_dir: str,
                   num_folds: int, with_baselines: bool = True,
                   changes: dict[str, object] | None = None) -> str:
    """Every fold trained and evaluated (or reused); returns the markdown table."""
    runs = fold_runs(config, workdir, data_dir, num_folds, changes)
    rows = experiments.run_all(runs)
    if with_baselines:
        rows = {run.name: [with_baseline(rows[run.name][0], run)] for run in runs}
    rows["mean ± std"] = [results for fold in rows.values() for results in fold]
    columns = COLUMNS if with_baselines else experiments.STANDARD_COLUMNS
    table = experiments.markdown_table(rows, columns, first_header="fold")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cross_validation.md").write_text(table + "\n")
    return table


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)
    changes = parse_settings(FLAGS.set)
    if FLAGS.name:
        changes["data.name"] = FLAGS.name
    print(cross_validate(FLAGS.config, Path(FLAGS.workdir), FLAGS.data_dir, FLAGS.folds,
                         FLAGS.baseline, changes))


def run() -> None:
    """Entry point (console script and scripts/cross_validate.py)."""
    define_flags()
    configs.run_app(main, __name__)
