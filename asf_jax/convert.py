"""Convert a reference PyTorch `.pyth` checkpoint into an asf_jax checkpoint directory.

    python -m asf_jax.convert --pyth SLOWFAST_VGG.pyth --out ckpt/slowfast_vgg [--classes FILE]

The `.pyth` is read without torch and without running its pickle's code (asf_jax.pyth). The
result loads with `load_classifier(out)` and gives the same logits as the `.pyth` itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asf_jax.checkpoint import META_ITEM, save_classifier
from asf_jax.classes import VGGSOUND_NUM_CLASSES, read_class_names
from asf_jax.classifier import Classifier, load_classifier
from asf_jax.models.slowfast import count_parameters

ASSUMED_ORDER_NOTE = (
    "note: class names are the shipped VGG-Sound list in sorted order; the published checkpoints "
    "do not record their class order, so this is an assumption. Pass --classes FILE to use "
    "another order.")


def convert(pyth: str | Path, out: str | Path, classes: str | Path | None = None,
            overwrite: bool = False) -> Classifier:
    """Read `pyth` (optionally renaming classes from a file) and write it to `out`.

    Raises ValueError (PythError, CheckpointMismatchError, a bad class list) before writing
    anything; an existing `out` is replaced only with `overwrite` and only if it is a checkpoint.
    """
    pyth, out = Path(pyth), Path(out)
    if not pyth.is_file():
        raise ValueError(f"{pyth}: no such .pyth file")
    empty_dir = out.is_dir() and not any(out.iterdir())
    if out.exists() and not empty_dir and not (overwrite and (out / META_ITEM).is_dir()):
        raise ValueError(f"{out}: already exists; pass --overwrite to replace an asf_jax "
                         "checkpoint there (nothing else is ever replaced)")
    names = read_class_names(classes) if classes is not None else None
    classifier = load_classifier(pyth)
    if names is not None and len(names) != classifier.config.num_classes:
        raise ValueError(f"{classes}: {len(names)} class names, but {pyth.name} has "
                         f"{classifier.config.num_classes} classes")
    classifier = Classifier(classifier.model, classifier.recipe,
                            names or classifier.class_names,
                            source=f"converted from {pyth.resolve()}")
    save_classifier(out, classifier.model, classifier.meta)
    return classifier


def _class_names_origin(classifier: Classifier, classes: str | Path | None) -> str:
    if classes is not None:
        return f"from {classes}"
    if classifier.config.num_classes == VGGSOUND_NUM_CLASSES:
        return "shipped VGG-Sound list (sorted order assumed)"
    return "placeholders class_0 ... (pass --classes FILE for real names)"


def summary(classifier: Classifier, out: Path, classes: str | Path | None) -> str:
    """What was written, in the words a user checks against the paper's model table."""
    config, recipe = classifier.config, classifier.recipe
    lines = [
        f"wrote {out.resolve()}",
        f"  model        {config.arch}, depth {config.depth}, width {config.width}, "
        f"{config.num_classes} classes, {count_parameters(classifier.model):,} parameters",
        f"  recipe       {recipe.name}: {recipe.sample_rate} Hz, {recipe.clip_seconds} s clips, "
        f"{recipe.num_frames} frames x {recipe.num_mels} mels (window {recipe.win_length}, "
        f"hop {recipe.hop_length} samples)",
        f"  class names  {_class_names_origin(classifier, classes)}: "
        f"{', '.join(classifier.class_names[:3])}, ...",
    ]
    if classes is None and config.num_classes == VGGSOUND_NUM_CLASSES:
        lines.append(ASSUMED_ORDER_NOTE)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asf_jax.convert", description=__doc__.splitlines()[0],
        epilog="Load the result with asf_jax.classifier.load_classifier(OUT) or use it with "
               "`python -m asf_jax.predict --ckpt OUT FILE...`.")
    parser.add_argument("--pyth", required=True,
                        help="reference checkpoint written by the PyTorch Auditory Slow-Fast code "
                             "(torch.save zip format); read safely, no code in it is run")
    parser.add_argument("--out", required=True,
                        help="directory to write the asf_jax checkpoint to (must not exist, or "
                             "be empty)")
    parser.add_argument("--classes",
                        help="text file with one class name per line, in the model's output "
                             "order (default: the shipped sorted VGG-Sound list for 309-class "
                             "models, class_0 ... otherwise)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing asf_jax checkpoint at --out")
    args = parser.parse_args(argv)
    try:
        classifier = convert(args.pyth, args.out, args.classes, args.overwrite)
    except ValueError as error:  # PythError, CheckpointMismatchError, class lists, --out
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(classifier, Path(args.out), args.classes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
