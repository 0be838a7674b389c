"""Zero-shot transfer: an LEP model labels another dataset's clips by that dataset's class names.

    python -m asf_jax.zero_shot --ckpt CKPT --data_dir D [--name NAME] [--data_config slowfast]
        [--split test] [--json results.json]

The protocol CLAP-style papers report (e.g. trained on VGG-Sound, tested on ESC-50): each test
clip's projection ê (averaged over its test views) is scored by cosine against the target
dataset's class names, embedded exactly as the checkpoint's own table was (its encoder and
templates). The classifier head is not used, so the target classes need not be the trained ones.
Reports top-1, top-5, mAP, mean AUC and d′ over the target classes, with chance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

from asf_jax import input_pipeline, metrics
from asf_jax.classifier import Classifier, load_classifier
from asf_jax.compile_cache import enable_compilation_cache
from asf_jax.datasets import DatasetSplit, load_split
from asf_jax.embeddings import embed_texts_like
from asf_jax.evaluate import Evaluator, read_like_checkpoint
from asf_jax.lep import open_vocab_scores
from asf_jax.steps import replicated, split_variables


def transfer(classifier: Classifier, split: DatasetSplit, batch_size: int = 32
             ) -> dict[str, float]:
    """Zero-shot metrics of `classifier` (with an LEP head) on `split` by its class names."""
    if classifier.lep is None:
        raise ValueError(f"{classifier.source or 'this checkpoint'} has no Label Embeddings "
                         "Projection head: zero-shot transfer needs one")
    split = read_like_checkpoint(classifier.meta, split, classifier.source)
    labels = embed_texts_like(classifier.label_embeddings, split.class_names)
    mesh = input_pipeline.make_mesh()
    params, batch_stats = jax.device_put(split_variables(classifier.model), replicated(mesh))
    outputs = Evaluator(classifier.graphdef, split, mesh, batch_size).outputs(params, batch_stats)
    cosines = np.asarray(open_vocab_scores(outputs["projected"], labels.table))
    results = metrics.compute_metrics((cosines + 1) / 2, outputs["label"], len(labels.table))
    results.pop("loss")  # cosines are not probabilities
    return results | {"chance_top1": 1 / len(labels.table),
                      "chance_top5": min(5, len(labels.table)) / len(labels.table)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asf_jax.zero_shot",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True,
                        help="asf_jax checkpoint or training workdir of a model with an LEP head")
    parser.add_argument("--data_dir", required=True, type=Path,
                        help="data dir of the built target dataset")
    parser.add_argument("--data_config", default="slowfast",
                        help="builder config of the target dataset (default slowfast)")
    parser.add_argument("--name", default="vggsound",
                        help="the target dataset's name in the data dir (default vggsound)")
    parser.add_argument("--split", default="test", help="split to label (default test)")
    parser.add_argument("--batch_size", type=int, default=32, help="clips per step")
    parser.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    args = parser.parse_args(argv)
    enable_compilation_cache()
    try:
        classifier = load_classifier(args.ckpt)
        split = load_split(args.data_dir, args.split, args.data_config, args.name)
        results = transfer(classifier, split, args.batch_size)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"zero-shot on {args.data_dir} {args.split} ({len(split.class_names)} classes, "
          f"{split.num_examples} clips): " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
