"""K-fold cross-validation in one command: train on K − 1 folds, test on the held-out one, K times.

    python scripts/cross_validate.py --config finetune --data_dir ~/tensorflow_datasets \\
        --folds 5 --workdir ~/runs/esc50_cv --config.data.name=esc50 [--config.a.b=value ...]

The dataset must have been built with folds (splits `fold1` ... `foldK`, e.g. from ESC-50's fold
column). Fold k trains on the other folds (`fold1+...`) and is evaluated on `foldk`, in
`WORKDIR/fold<k>`; rerunning resumes unfinished folds and reuses finished ones. Beside each fold's
numbers stands the linear baseline on the same split (logistic regression on log-mel statistics,
asf_jax/baseline.py). Prints a markdown table (also WORKDIR/cross_validation.md): top-1, top-5,
mAP, d′ and the baseline's top-1 per fold, then mean ± std over the folds.
"""

from __future__ import annotations

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


def fold_runs(config: ml_collections.ConfigDict, workdir: Path, data_dir: str, num_folds: int
              ) -> list[experiments.Run]:
    if num_folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {num_folds}")
    runs = []
    for fold in range(1, num_folds + 1):
        train_split, eval_split = fold_splits(fold, num_folds)
        changes = {"data.data_dir": data_dir, "data.train_split": train_split,
                   "data.eval_split": eval_split}
        runs.append(experiments.Run(f"fold{fold}", experiments.variant(config, changes),
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
           experiments.metric_column("baseline top-1 %", "baseline_top1", 100, 1))


def cross_validate(config: ml_collections.ConfigDict, workdir: Path, data_dir: str,
                   num_folds: int, with_baselines: bool = True) -> str:
    """Every fold trained and evaluated (or reused); returns the markdown table."""
    runs = fold_runs(config, workdir, data_dir, num_folds)
    rows = experiments.run_all(runs)
    if with_baselines:
        rows = {run.name: [rows[run.name][0] | {"baseline_top1": baseline_results(run)["top1"]}]
                for run in runs}
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
    print(cross_validate(FLAGS.config, Path(FLAGS.workdir), FLAGS.data_dir, FLAGS.folds,
                         FLAGS.baseline))


def run() -> None:
    """Entry point (console script and scripts/cross_validate.py)."""
    define_flags()
    configs.run_app(main, __name__)
