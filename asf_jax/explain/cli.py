"""Explain a prediction: hear what the network found salient, see where it is, and check it matters.

    python -m asf_jax.explain --ckpt CKPT --audio clip.wav --out explained
    python -m asf_jax.explain --ckpt CKPT --split test --num 20 --data_dir D --manual_dir M --out E
    python -m asf_jax.explain --ckpt CKPT --split test --num 20 --data_dir D --manual_dir M \\
        --compare grad,gradxinput,smoothgrad,ig,gradcam --out E   # method table in E/compare.md

    python -m asf_jax.explain --ckpt LEP_CKPT --audio clip.wav --target_text "dog barking" \
        --contrast "cat meowing" --out E   # any label text, against another (LEP models)

(`scripts/explain.py` and `asf-jax-explain` are the same command.) CKPT is anything
`load_classifier` takes: a reference .pyth, an asf_jax checkpoint or a training workdir.
Methods are compared where the answer is known (an event placed into other recordings) by
`python -m asf_jax.explain.benchmark` (asf_jax/explain/benchmark.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from asf_jax.audio import AudioError
from asf_jax.classifier import Classifier, load_classifier
from asf_jax.compile_cache import enable_compilation_cache
from asf_jax.explain import app, benchmark, masks, saliency

# Flags that set a SaliencyConfig field; given explicitly, they override --method's options.
SALIENCY_FLAGS = ("score", "sign", "layer", "window_weight", "samples", "noise", "window_hop")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m asf_jax.explain", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--ckpt", required=True,
                        help="reference .pyth checkpoint, asf_jax checkpoint or training workdir")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--audio", nargs="+", type=Path,
                        help="audio file(s), any rate / channels / container load_audio reads")
    source.add_argument("--split", help="explain clips of this split of a built dataset (test)")
    parser.add_argument("--num", type=int, default=10, help="with --split: number of clips")
    parser.add_argument("--data_dir", type=Path, help="with --split: the built dataset's directory")
    parser.add_argument("--manual_dir", type=Path,
                        help="with --split: the audio (manual) dir, for phase-preserving "
                             "reconstruction; without it (or a missing file) Griffin-Lim is used")
    parser.add_argument("--config", default="slowfast", help="with --split: dataset config name")
    parser.add_argument("--name", default="vggsound",
                        help="with --split: the dataset's name in --data_dir (vggsound, or the "
                             "--name it was built under)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--target", help="class name or index to explain (default: predicted)")
    target.add_argument("--target_text",
                        help="explain the cosine between the LEP projection and this text's "
                             "embedding (any label text, also one never trained; needs a model "
                             "with an LEP head)")
    target.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=1,
                        help="explain the sum of the K most probable classes' scores")
    parser.add_argument("--contrast",
                        help="explain the target against this class (with --target) or text "
                             "(with --target_text): the difference of their scores")
    parser.add_argument("--method", default=saliency.DEFAULT_SPEC,
                        help=f"saliency method, one of {', '.join(saliency.METHODS)}, with "
                             "options: method:key=value,... (keys: the flags below, and "
                             "steps/learning_rate/area/smoothness/deletion/cell/init/operator "
                             "of the optimised mask), e.g. grad:score=logit,sign=positive or "
                             f"mask:steps=20; options not given are plain `grad`'s (default "
                             f"{saliency.DEFAULT_SPEC}, chosen by the benchmark)")
    plain = saliency.SaliencyConfig()
    parser.add_argument("--score", choices=saliency.SCORES,
                        help="class score differentiated: softmax probability, logit, "
                             "log-probability or margin over the runner-up (or the --contrast "
                             "class)")
    parser.add_argument("--sign", choices=saliency.SIGNS,
                        help="gradient sign kept: auto (each method's usual), abs, positive")
    parser.add_argument("--layer", type=int, choices=(4, 5), help="Grad-CAM stage")
    parser.add_argument("--window_weight", choices=saliency.WINDOW_WEIGHTS,
                        help="prob: weight each explained window's map by its target "
                             "probability (a text target's cosine); none: not")
    parser.add_argument("--samples", type=int,
                        help=f"SmoothGrad noisy copies / integrated-gradient steps "
                             f"({plain.samples})")
    parser.add_argument("--noise", type=float,
                        help=f"SmoothGrad noise std as a fraction of the log-mel range "
                             f"({plain.noise})")
    parser.add_argument("--window_hop", type=float,
                        help=f"hop between explained 5.1-s windows, as a fraction of a window "
                             f"({plain.window_hop})")
    parser.add_argument("--threshold", default="std:1",
                        help="mask rule on the [0,1] saliency: mean, std:K (mean + K std) or "
                             "top:P (the P %% most salient cells); default std:1")
    parser.add_argument("--soft", action="store_true",
                        help="soft mask (normalised saliency where selected) instead of 0/1")
    parser.add_argument("--smooth", type=float, nargs=2, default=(1.0, 1.0),
                        metavar=("FRAMES", "MELS"),
                        help="Gaussian smoothing sigmas of the saliency before thresholding "
                             "(0 0 disables; default 1 1)")
    parser.add_argument("--reconstruction", choices=app.RECONSTRUCTIONS, default="auto",
                        help="auto: phase-preserving iSTFT when the audio is available, else "
                             "Griffin-Lim")
    parser.add_argument("--n_iter", type=int, default=32, help="Griffin-Lim iterations")
    parser.add_argument("--curve_steps", type=int, default=11,
                        help="points of the deletion/insertion curves (0 skips them)")
    parser.add_argument("--baseline", choices=("mean", "floor"), default="mean",
                        help="value of removed log-mel cells in the curves: the clip's mean "
                             "log-mel or the log floor (digital silence)")
    parser.add_argument("--compare", help="comma-separated methods (with options, as --method): "
                                          "explain every clip with each and write "
                                          "OUT/compare.md and compare.json")
    parser.add_argument("--profile", action="store_true",
                        help="time each stage (median of --repeats runs) on the first clip")
    parser.add_argument("--repeats", type=int, default=5, help="runs per stage with --profile")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise and random masks")
    parser.add_argument("--out", type=Path, default=Path("explained"), help="output directory")
    args = parser.parse_args(argv)
    if args.split and not args.data_dir:
        parser.error("--split needs --data_dir")
    try:
        args.options = options(args)
    except ValueError as error:
        parser.error(str(error))
    return args


def options(args: argparse.Namespace) -> app.ExplainOptions:
    """The typed options the flags describe."""
    given = {key: getattr(args, key) for key in SALIENCY_FLAGS if getattr(args, key) is not None}
    return app.ExplainOptions(
        saliency=dataclasses.replace(saliency.SaliencyConfig.parse(args.method), **given),
        mask=masks.MaskSpec.parse(args.threshold, binary=not args.soft,
                                  sigma=tuple(args.smooth)),
        target=args.target, target_text=args.target_text, contrast=args.contrast,
        top_k=args.top_k, reconstruction=args.reconstruction,
        n_iter=args.n_iter, curve_steps=args.curve_steps, baseline=args.baseline, seed=args.seed)


def run(args: argparse.Namespace, classifier: Classifier | None = None) -> list[dict]:
    """What `main` does once the flags are parsed (with `classifier` instead of loading
    `--ckpt` if given); returns every clip's (or method's) summary."""
    classifier = classifier or load_classifier(args.ckpt)
    recipe = classifier.recipe
    if args.split:
        clips = app.SplitClips(args.data_dir, args.split, args.num, args.manual_dir, args.config,
                               args.name)
        items = list(app.split_items(clips, recipe))
    else:
        items = list(app.audio_items(args.audio, recipe))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile:
        if items[0].samples is None:
            raise ValueError("--profile needs audio (not only stored log-mels)")
        timings = app.profile(classifier, items[0].samples, args.options, args.repeats)
        (args.out / "profile.json").write_text(json.dumps(timings, indent=1))
        print(" ".join(f"{k} {v:.3f}s" for k, v in timings.items()))
    if args.compare:
        return app.compare(classifier, items, args.options, args.out,
                           benchmark.split_specs(args.compare))
    if len(items) == 1 and not args.split:
        return [app.explain_item(classifier, items[0], args.options, args.out)]
    return app.explain_all(classifier, items, args.options, args.out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    enable_compilation_cache()
    try:
        run(args)
    except (AudioError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
