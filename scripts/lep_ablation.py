"""Baseline vs. Label Embeddings Projection at several λ: same data, same seed, one table.

    python scripts/lep_ablation.py --data_dir demo/tfds --workdir demo/lep_ablation \\
        --lams 0.25,0.5,0.75 --num_epochs 12 --held_out 2

Every run is `train_and_evaluate` of the same config (configs/demo.py unless --config), with only
`config.lep` changed, in `WORKDIR/<run>`; rerunning resumes unfinished runs and reuses finished
ones. With `--held_out K` all runs train without the same K classes, and the LEP runs also report
zero-shot top-1 on those classes' test clips (cosine of ê against their label embeddings). Prints
one markdown table: top-1, top-5, mAP, d′ over all classes, and held-out top-1 with chance.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path

import ml_collections

from asf_jax.train import train_and_evaluate


def run_config(args: argparse.Namespace, lam: float | None) -> ml_collections.ConfigDict:
    """The shared config; `lam=None` is the baseline (no LEP head)."""
    config = importlib.import_module(f"configs.{Path(args.config).stem}").get_config()
    config.data.data_dir = args.data_dir
    config.data.config = args.data_config
    config.train.num_epochs = args.num_epochs
    config.train.num_steps = args.num_steps
    config.eval.every_epochs = 10_000  # once, at the end
    config.lep.held_out_classes = args.held_out
    config.lep.enable = lam is not None
    config.lep.lam = lam or 0.0
    config.optim.clip_norm = args.clip_norm
    return config


def run(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, float]:
    """Train and evaluate; a run finished earlier gives its last evaluation's metrics."""
    results = train_and_evaluate(config, workdir)
    if results:
        return results
    latest = max((workdir / "eval").glob("metrics_step*.json"),
                 key=lambda p: int(p.stem.removeprefix("metrics_step")))
    return json.loads(latest.read_text())


def table_row(name: str, results: dict[str, float]) -> str:
    held_out = "—"
    if "heldout_top1" in results:
        held_out = (f"{100 * results['heldout_top1']:.1f} "
                    f"(chance {100 * results['heldout_chance_top1']:.1f})")
    return (f"| {name} | {100 * results['top1']:.1f} | {100 * results['top5']:.1f} | "
            f"{results['map']:.3f} | {results['dprime']:.3f} | {held_out} |")


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    header = ["| run | top-1 % | top-5 % | mAP | d′ | held-out top-1 % |",
              "|---|---|---|---|---|---|"]
    return "\n".join(header + [table_row(name, results) for name, results in rows.items()])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="built dataset (asf_jax.datasets.build)")
    parser.add_argument("--workdir", required=True, help="one sub-directory per run")
    parser.add_argument("--config", default="configs/demo.py", help="a config in configs/")
    parser.add_argument("--data_config", default="slowfast", help="builder config of the data")
    parser.add_argument("--lams", default="0.25,0.5,0.75", help="comma-separated λ values")
    parser.add_argument("--num_epochs", type=int, default=12)
    parser.add_argument("--num_steps", type=int, help="overrides --num_epochs")
    parser.add_argument("--held_out", type=int, default=0, metavar="K",
                        help="classes kept out of training in every run (zero-shot test)")
    parser.add_argument("--clip_norm", type=float, default=1.0,
                        help="gradient-norm clipping in every run (the thesis's LEP: 1.0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    runs: dict[str, float | None] = {"baseline": None} | {
        f"LEP λ={lam}": float(lam) for lam in args.lams.split(",")}
    rows = {name: run(run_config(args, lam), Path(args.workdir) / name.replace(" λ=", "_lam"))
            for name, lam in runs.items()}
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
