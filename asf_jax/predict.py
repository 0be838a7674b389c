"""Label audio files with a trained classifier: top-k classes per file, or per window over time.

    python -m asf_jax.predict --ckpt CKPT [--classes FILE] [--top_k 5] [--json]
        [--per_window | --window_seconds S] [--labels "dog barking,rain,..."] FILE...

A file's scores are the softmax averaged over the recipe's 2 evenly spaced test views (the
evaluation protocol). Per-window mode also labels consecutive clips so that a long recording
shows what sounds when. With a Label Embeddings Projection checkpoint, `--labels` also ranks any
label texts (open vocabulary) by the cosine similarity between the clip's projection ê (averaged
over the test views) and the labels' embeddings, made with the checkpoint's text encoder.
A file that cannot be read is reported and the others are still labelled.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

from asf_jax import audio
from asf_jax.classifier import Classifier, load_classifier
from asf_jax.compile_cache import enable_compilation_cache
from asf_jax.embeddings import LabelEmbeddings, embed_texts_like
from asf_jax.lep import open_vocab_scores


def top_k(probabilities: np.ndarray, class_names: list[str], k: int) -> list[dict[str, Any]]:
    """The k most probable classes, best first, as [{label, probability}]."""
    best = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": class_names[i], "probability": float(probabilities[i])} for i in best]


def rank_label_texts(classifier: Classifier, samples: np.ndarray, labels: LabelEmbeddings
                     ) -> list[dict[str, Any]]:
    """Every label, best first, as [{label, score}]: cosine of ê (mean over the test views)."""
    views = audio.logmel_views(samples, classifier.recipe.sample_rate, recipe=classifier.recipe)
    projected = classifier.project(views).mean(axis=0, keepdims=True)
    scores = np.asarray(open_vocab_scores(projected, labels.table))[0]
    return [{"label": labels.class_names[i], "score": float(scores[i])}
            for i in np.argsort(-scores, kind="stable")]


def predict_file(classifier: Classifier, path: str | os.PathLike, k: int = 5,
                 window_seconds: float | None = None, labels: LabelEmbeddings | None = None
                 ) -> dict[str, Any]:
    """{file, duration, top} for one file; with `window_seconds` also `windows`: one
    {start, end, top} per clip, clips `window_seconds` apart, together covering the whole file;
    with `labels` (an LEP classifier only) also `labels`, from `rank_label_texts`.

    Raises AudioError for an unreadable file.
    """
    recipe = classifier.recipe
    samples = audio.load_audio(path, recipe.sample_rate)
    duration = len(samples) / recipe.sample_rate
    result: dict[str, Any] = {
        "file": str(path), "duration": duration,
        "top": top_k(classifier.predict(samples, recipe.sample_rate), classifier.class_names, k)}
    if labels is not None:
        result["labels"] = rank_label_texts(classifier, samples, labels)
    if window_seconds is not None:
        views, starts = audio.logmel_windows(samples, recipe.sample_rate, recipe=recipe,
                                             hop_seconds=window_seconds)
        result["windows"] = [
            {"start": float(start), "end": min(float(start) + recipe.clip_seconds, duration),
             "top": top_k(probabilities, classifier.class_names, k)}
            for start, probabilities in zip(starts, classifier.probabilities(views), strict=True)]
    return result


def predict_files(classifier: Classifier, paths: list[str | os.PathLike], k: int = 5,
                  window_seconds: float | None = None, labels: LabelEmbeddings | None = None
                  ) -> list[dict[str, Any]]:
    """`predict_file` for each path; an unreadable file gives {file, error} and the rest go on."""
    results = []
    for path in paths:
        try:
            results.append(predict_file(classifier, path, k, window_seconds, labels))
        except audio.AudioError as error:
            results.append({"file": str(path), "error": error.reason})
    return results


def _format_top(top: list[dict[str, Any]], indent: str) -> list[str]:
    return [f"{indent}{rank:>2}. {100 * entry['probability']:6.2f}%  {entry['label']}"
            for rank, entry in enumerate(top, 1)]


def format_results(results: list[dict[str, Any]]) -> str:
    """Human-readable report: one block per file, rank / percentage / label columns.

    Files that failed are left out: `main` reports them on stderr.
    """
    lines = []
    for result in results:
        if "error" in result:
            continue
        lines.append(f"{result['file']} ({result['duration']:.2f} s)")
        lines += _format_top(result["top"], "  ")
        if "labels" in result:
            lines.append("  labels by cosine similarity:")
            lines += [f"    {rank:>2}. {entry['score']:+.3f}  {entry['label']}"
                      for rank, entry in enumerate(result["labels"], 1)]
        for window in result.get("windows", []):
            lines.append(f"  window {window['start']:7.2f} - {window['end']:7.2f} s")
            lines += _format_top(window["top"], "    ")
    return "\n".join(lines)


def label_texts_table(classifier: Classifier, labels: str) -> LabelEmbeddings:
    """Comma-separated label texts embedded with the encoder the checkpoint was trained with."""
    if classifier.label_embeddings is None:
        raise ValueError(f"--labels needs a checkpoint with a Label Embeddings Projection head; "
                         f"{classifier.source or 'this checkpoint'} has none (train one with "
                         "configs/slowfast_lep.py or --config.lep.enable=True)")
    texts = list(dict.fromkeys(t.strip() for t in labels.split(",") if t.strip()))
    if not texts:
        raise ValueError(f"--labels {labels!r}: no label text")
    return embed_texts_like(classifier.label_embeddings, texts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asf_jax.predict",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="audio files (wav, flac, ogg, mp3; m4a/mp4/aac/webm/mkv via ffmpeg)")
    parser.add_argument("--ckpt", required=True,
                        help="asf_jax checkpoint directory or training workdir, or a reference "
                             "PyTorch .pyth file")
    parser.add_argument("--classes",
                        help="text file with one class name per line, overriding the "
                             "checkpoint's names")
    parser.add_argument("--top_k", type=int, default=5, help="classes to list (default 5)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document: a list of {file, duration, top: [{label, "
                             "probability}], windows?} or {file, error}")
    parser.add_argument("--per_window", action="store_true",
                        help="also label consecutive non-overlapping clips (one clip is the "
                             "recipe's input length, 5.119 s for Slow-Fast) with start/end times")
    parser.add_argument("--window_seconds", type=float, metavar="S",
                        help="per-window mode with clips starting every S seconds (S < clip "
                             "length gives overlapping clips); implies --per_window")
    parser.add_argument("--labels", metavar="A,B,...",
                        help="comma-separated label texts to rank by cosine similarity with the "
                             "clip's projection (a checkpoint with an LEP head only)")
    args = parser.parse_args(argv)
    enable_compilation_cache()
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")
    if args.window_seconds is not None and args.window_seconds <= 0:
        parser.error("--window_seconds must be positive")
    try:
        classifier = load_classifier(args.ckpt, args.classes)
        labels = label_texts_table(classifier, args.labels) if args.labels else None
    except ValueError as error:  # PythError, CheckpointError, CheckpointMismatchError, classes
        print(f"error: {error}", file=sys.stderr)
        return 2
    window_seconds = args.window_seconds or (
        classifier.recipe.clip_seconds if args.per_window else None)
    results = predict_files(classifier, args.files, args.top_k, window_seconds, labels)
    for result in results:
        if "error" in result:
            print(f"error: {result['file']}: {result['error']}", file=sys.stderr)
    print(json.dumps(results, indent=2) if args.json
          else format_results(results))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
