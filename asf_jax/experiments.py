"""Several training runs of one config with small changes, and their results in one table.

Each run trains and evaluates in its own workdir; rerunning reuses finished runs (their last
evaluation) and resumes unfinished ones, so a long ablation or cross-validation survives being
stopped. Results group by run name over seeds (or folds) into `mean ± std` table cells.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import ml_collections
import numpy as np

from asf_jax.train import train_and_evaluate

Results = dict[str, float]


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: its row in the table, and the config and workdir it trains with."""

    name: str
    config: ml_collections.ConfigDict
    workdir: Path


def variant(config: ml_collections.ConfigDict, changes: dict[str, object]
            ) -> ml_collections.ConfigDict:
    """A copy of `config` with dotted fields changed (`{"lep.lam": 0.5, "seed": 1}`)."""
    config = copy.deepcopy(config)
    config.unlock()
    config.update_from_flattened_dict(changes)
    return config


def last_results(workdir: Path) -> Results:
    """The metrics of a run's last evaluation, as written to workdir/eval."""
    files = list((workdir / "eval").glob("metrics_step*.json"))
    if not files:
        raise FileNotFoundError(f"{workdir}: no evaluation results")
    latest = max(files, key=lambda p: int(p.stem.removeprefix("metrics_step")))
    return json.loads(latest.read_text())


def run_or_reuse(run: Run) -> Results:
    """Train and evaluate; a run finished earlier gives its last evaluation's metrics."""
    logging.info("Run %s in %s", run.name, run.workdir)
    return train_and_evaluate(run.config, run.workdir) or last_results(run.workdir)


def run_all(runs: Sequence[Run]) -> dict[str, list[Results]]:
    """Every run's results, grouped by run name in the order the names first appear."""
    grouped: dict[str, list[Results]] = {}
    for run in runs:
        grouped.setdefault(run.name, []).append(run_or_reuse(run))
    return grouped


def mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    """`m` for one value, `m ± s` (sample std) for several."""
    text = f"{scale * np.mean(values):.{digits}f}"
    return text + (f" ± {scale * np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else "")


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: its header and how a row's results (over seeds/folds) become a cell."""

    header: str
    cell: Callable[[list[Results]], str]


def metric_column(header: str, key: str, scale: float = 1.0, digits: int = 3) -> Column:
    return Column(header, lambda results: mean_std([r[key] for r in results], scale, digits))


STANDARD_COLUMNS = (metric_column("top-1 %", "top1", 100, 1),
                    metric_column("top-5 %", "top5", 100, 1),
                    metric_column("mAP", "map"), metric_column("d′", "dprime"))


def markdown_table(rows: dict[str, list[Results]], columns: Sequence[Column] = STANDARD_COLUMNS,
                   first_header: str = "run") -> str:
    lines = ["| " + " | ".join([first_header, *(c.header for c in columns)]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    lines += ["| " + " | ".join([name, *(c.cell(results) for c in columns)]) + " |"
              for name, results in rows.items()]
    return "\n".join(lines)
