"""Baseline vs. Label Embeddings Projection at several λ: same data and seeds, one table.

    python scripts/lep_ablation.py --data_dir demo/tfds --workdir demo/lep_ablation \\
        --lams 0.25,0.5,0.75 --num_epochs 12 --held_out 2 --seeds 0,1

Every run is `train_and_evaluate` of the same config (configs/demo.py unless --config), with only
`config.lep` and the seed changed, in `WORKDIR/<run>_seed<S>`; rerunning resumes unfinished runs
and reuses finished ones. With `--held_out K` all runs of a seed train without the same K classes
(chosen by the seed), and the LEP runs also report zero-shot top-1 on those classes' test clips
(cosine of ê against their label embeddings). Prints one markdown table: top-1, top-5, mAP, d′
over all classes, and held-out top-1 with chance; with several seeds, mean ± std over them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import logging
import sys
from pathlib import Path

import ml_collections
import numpy as np

from asf_jax.train import train_and_evaluate


def load_config(path: str) -> ml_collections.ConfigDict:
    """`get_config()` of a config file such as configs/demo.py, run from anywhere."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    # Configs import each other as `configs.<name>`: their package's parent must be importable.
    if str(path.parent.parent) not in sys.path:
        sys.path.insert(0, str(path.parent.parent))
    return importlib.import_module(f"{path.parent.name}.{path.stem}").get_config()


def run_config(args: argparse.Namespace, lam: float | None, seed: int
               ) -> ml_collections.ConfigDict:
    """The shared config; `lam=None` is the baseline (no LEP head)."""
    config = load_config(args.config)
    config.seed = seed
    config.data.data_dir = args.data_dir
    config.data.config = args.data_config
    config.train.num_epochs = args.num_epochs
    config.train.num_steps = args.num_steps
    config.eval.every_epochs = 10_000  # once, at the end
    config.lep.held_out_classes = args.held_out
    config.lep.enable = lam is not None
    config.lep.lam = lam or 0.0
    config.optim.clip_norm = args.clip_norm
    config.update_from_flattened_dict(dict(args.set))
    return config


def parse_override(text: str) -> tuple[str, object]:
    """`train.global_batch_size=8` -> ("train.global_batch_size", 8); non-literals stay text."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def run(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, float]:
    """Train and evaluate; a run finished earlier gives its last evaluation's metrics."""
    results = train_and_evaluate(config, workdir)
    if results:
        return results
    latest = max((workdir / "eval").glob("metrics_step*.json"),
                 key=lambda p: int(p.stem.removeprefix("metrics_step")))
    return json.loads(latest.read_text())


def mean_std(values: list[float], scale: float, digits: int) -> str:
    """`m` for one value, `m ± s` (sample std) for several."""
    text = f"{scale * np.mean(values):.{digits}f}"
    return text + (f" ± {scale * np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else "")


def table_row(name: str, seeds: list[dict[str, float]]) -> str:
    """One run's metrics over its seeds."""
    def cell(key: str, scale: float = 1.0, digits: int = 3) -> str:
        return mean_std([results[key] for results in seeds], scale, digits)

    held_out = "—"
    if "heldout_top1" in seeds[0]:
        chance = 100 * np.mean([results["heldout_chance_top1"] for results in seeds])
        held_out = f"{cell('heldout_top1', 100, 1)} (chance {chance:.1f})"
    return (f"| {name} | {cell('top1', 100, 1)} | {cell('top5', 100, 1)} | {cell('map')} | "
            f"{cell('dprime')} | {held_out} |")


def markdown_table(rows: dict[str, list[dict[str, float]]]) -> str:
    header = ["| run | top-1 % | top-5 % | mAP | d′ | held-out top-1 % |",
              "|---|---|---|---|---|---|"]
    return "\n".join(header + [table_row(name, seeds) for name, seeds in rows.items()])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="built dataset (asf_jax.datasets.build)")
    parser.add_argument("--workdir", required=True, help="one sub-directory per run")
    parser.add_argument("--config", default="configs/demo.py",
                        help="config file (a get_config() module)")
    parser.add_argument("--data_config", default="slowfast", help="builder config of the data")
    parser.add_argument("--lams", default="0.25,0.5,0.75", help="comma-separated λ values")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; every run per seed")
    parser.add_argument("--num_epochs", type=int, default=12,
                        help="training epochs of every run (default 12)")
    parser.add_argument("--num_steps", type=int, help="overrides --num_epochs")
    parser.add_argument("--held_out", type=int, default=0, metavar="K",
                        help="classes kept out of training in every run (zero-shot test)")
    parser.add_argument("--clip_norm", type=float, default=1.0,
                        help="gradient-norm clipping in every run (the thesis's LEP: 1.0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        type=parse_override,
                        help="any other config field for every run, e.g. "
                             "--set train.global_batch_size=8 (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    runs: dict[str, float | None] = {"baseline": None} | {
        f"LEP λ={lam}": float(lam) for lam in args.lams.split(",")}
    seeds = [int(seed) for seed in args.seeds.split(",")]
    rows = {name: [run(run_config(args, lam, seed),
                       Path(args.workdir) / f"{name.replace(' λ=', '_lam')}_seed{seed}")
                   for seed in seeds]
            for name, lam in runs.items()}
    table = markdown_table(rows)
    (Path(args.workdir) / "ablation.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
