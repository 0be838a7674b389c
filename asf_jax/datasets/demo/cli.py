"""The demo dataset's command line: `python -m asf_jax.datasets.demo --out DIR` (see `--help`)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from asf_jax.datasets.demo.dataset import make_demo_dataset


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Synthesise a small VGG-Sound-style demo dataset (manual-download layout).")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder: created, or replaced if it holds an earlier demo "
                             "dataset; any other non-empty folder is refused")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed; the same seed gives the same CSV and audio (default 0)")
    parser.add_argument("--clips-per-class", type=int, default=30,
                        help="good clips per class, train and test together (default 30)")
    parser.add_argument("--test-per-class", type=int, default=6,
                        help="of those, clips per class in the test split (default 6)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    summary = make_demo_dataset(args.out, seed=args.seed, clips_per_class=args.clips_per_class,
                                test_per_class=args.test_per_class)
    print(f"wrote {args.out}")
    print(summary)
    print(f"  took {time.perf_counter() - began:.1f} s")


