"""Explain a prediction: hear what the network found salient, see where it is, and check it matters.

For each recording: saliency of the predicted (or a chosen) class over the whole log-mel, a mask,
the salient audio and its complement (phase-preserving when the audio is at hand, else Griffin-Lim),
a figure, and a JSON summary with faithfulness numbers (re-classified reconstructions, a random mask
of the same area, deletion/insertion curves). Several recordings also get an index.html to browse.

    python scripts/explain.py --ckpt CKPT --audio clip.wav --out explained
    python scripts/explain.py --ckpt CKPT --split test --num 20 --data_dir D --manual_dir M --out E
    python scripts/explain.py --ckpt CKPT --split test --num 20 --data_dir D --manual_dir M \\
        --compare grad,gradxinput,smoothgrad,ig,gradcam --out E   # method table in E/compare.md
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")

import librosa.display  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from asf_jax import audio, explain, reconstruct  # noqa: E402
from asf_jax.classifier import Classifier, load_classifier  # noqa: E402
from asf_jax.recipe import AudioRecipe  # noqa: E402

WAVS = ("original", "salient", "complement")


@dataclasses.dataclass
class Item:
    """One recording to explain: its audio when available, else only its log-mel."""

    name: str
    logmel: np.ndarray  # (frames, mel)
    samples: np.ndarray | None  # (samples,) at the recipe's rate
    label: str | None = None


# ------------------------------------------------------------------------------------------------
# Command line.
# ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
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
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--target", help="class name or index to explain (default: predicted)")
    target.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=1,
                        help="explain the sum of the K most probable classes' scores")
    parser.add_argument("--method", choices=explain.METHODS, default="grad",
                        help="saliency method (default grad)")
    parser.add_argument("--score", choices=explain.SCORES, default="prob",
                        help="class score differentiated: softmax probability or logit")
    parser.add_argument("--samples", type=int, default=8,
                        help="SmoothGrad noisy copies / integrated-gradient steps")
    parser.add_argument("--noise", type=float, default=0.1,
                        help="SmoothGrad noise std as a fraction of the log-mel range")
    parser.add_argument("--window_hop", type=float, default=0.5,
                        help="hop between explained 5.1-s windows, as a fraction of a window")
    parser.add_argument("--threshold", default="std:1",
                        help="mask rule on the [0,1] saliency: mean, std:K (mean + K std) or "
                             "top:P (the P %% most salient cells); default std:1")
    parser.add_argument("--soft", action="store_true",
                        help="soft mask (normalised saliency where selected) instead of 0/1")
    parser.add_argument("--smooth", type=float, nargs=2, default=(1.0, 1.0),
                        metavar=("FRAMES", "MELS"),
                        help="Gaussian smoothing sigmas of the saliency before thresholding "
                             "(0 0 disables; default 1 1)")
    parser.add_argument("--reconstruction", choices=("auto", "phase", "griffinlim"),
                        default="auto", help="auto: phase-preserving iSTFT when the audio is "
                                             "available, else Griffin-Lim")
    parser.add_argument("--n_iter", type=int, default=32, help="Griffin-Lim iterations")
    parser.add_argument("--curve_steps", type=int, default=11,
                        help="points of the deletion/insertion curves (0 skips them)")
    parser.add_argument("--baseline", choices=("mean", "floor"), default="mean",
                        help="value of removed log-mel cells in the curves: the clip's mean "
                             "log-mel or the log floor (digital silence)")
    parser.add_argument("--compare", help="comma-separated methods: explain every clip with each "
                                          "and write OUT/compare.md and compare.json")
    parser.add_argument("--profile", action="store_true",
                        help="time each stage (median of --repeats runs) on the first clip")
    parser.add_argument("--repeats", type=int, default=5, help="runs per stage with --profile")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise and random masks")
    parser.add_argument("--out", type=Path, default=Path("explained"), help="output directory")
    args = parser.parse_args(argv)
    if args.split and not args.data_dir:
        parser.error("--split needs --data_dir")
    return args


def saliency_config(args: argparse.Namespace, method: str | None = None
                    ) -> explain.SaliencyConfig:
    return explain.SaliencyConfig(method or args.method, args.score, args.samples, args.noise,
                                  args.window_hop)


def mask_spec(args: argparse.Namespace) -> explain.MaskSpec:
    return explain.MaskSpec.parse(args.threshold, binary=not args.soft, sigma=tuple(args.smooth))


# ------------------------------------------------------------------------------------------------
# Inputs.
# ------------------------------------------------------------------------------------------------


def audio_items(paths: list[Path], recipe: AudioRecipe) -> Iterator[Item]:
    for path in paths:
        samples = audio.load_audio(path, recipe.sample_rate)
        yield Item(path.stem, audio.logmel(samples, recipe), samples)


def split_items(args: argparse.Namespace, recipe: AudioRecipe) -> Iterator[Item]:
    """Clips of a built split: the audio from --manual_dir if found, else the first view only."""
    from asf_jax.datasets import load_split  # TFDS is needed only here

    split = load_split(args.data_dir, args.split, args.config)
    for index in range(min(args.num, split.num_examples)):
        example = split.source[index]
        filename = example["filename"]
        filename = filename.decode() if isinstance(filename, bytes) else str(filename)
        label = split.class_names[int(example["label"])]
        name = f"{index:04d}_{Path(filename).stem}"
        try:
            if args.manual_dir is None:
                raise audio.AudioError(filename, "no --manual_dir")
            samples = audio.load_audio(args.manual_dir / filename, recipe.sample_rate)
        except audio.AudioError as error:
            print(f"  {name}: {error}; Griffin-Lim from the stored first view", file=sys.stderr)
            yield Item(name, np.asarray(example["views"][0], np.float32), None, label)
        else:
            yield Item(name, audio.logmel(samples, recipe), samples, label)


# ------------------------------------------------------------------------------------------------
# One recording.
# ------------------------------------------------------------------------------------------------


def reconstruct_item(item: Item, masks: dict[str, np.ndarray], recipe: AudioRecipe, mode: str,
                     n_iter: int) -> tuple[dict[str, np.ndarray], str]:
    """Each mask's audio (one batch) and the method: phase-preserving unless told otherwise."""
    samples = item.samples if mode != "griffinlim" else None
    if mode == "phase" and samples is None:
        raise ValueError(f"{item.name}: phase-preserving reconstruction needs the audio")
    length = len(item.samples) if item.samples is not None else None
    audios, method = reconstruct.masked_audio(item.logmel, np.stack(list(masks.values())), recipe,
                                              samples, length, n_iter)
    return dict(zip(masks, audios, strict=True)), method


def explain_item(classifier: Classifier, item: Item, args: argparse.Namespace, out: Path,
                 method: str | None = None) -> dict:
    """Explain one recording into `out`: WAVs, figure.png, summary.json; returns the summary."""
    recipe = classifier.recipe
    config = saliency_config(args, method)
    explained = explain.explain_logmel(classifier, item.logmel, args.target, args.top_k, config,
                                       args.seed)
    mask = explain.make_mask(explained.saliency, mask_spec(args))
    masks = {"salient": mask, "complement": 1 - mask,
             "random": explain.random_mask(mask, np.random.default_rng(args.seed))}
    if item.samples is None:  # stored log-mels only: the original is heard through Griffin-Lim
        masks["original"] = np.ones_like(mask)
    audios, method = reconstruct_item(item, masks, recipe, args.reconstruction, args.n_iter)
    if item.samples is not None:
        reference = float(classifier.predict(item.samples)[list(explained.targets)].sum())
        audios["original"] = item.samples
    else:
        reference = float(explained.probabilities[list(explained.targets)].sum())
    out.mkdir(parents=True, exist_ok=True)
    for name in WAVS:
        soundfile.write(out / f"{name}.wav", np.clip(audios[name], -1, 1), recipe.sample_rate,
                        subtype="PCM_16")
    summary = {
        "name": item.name, "label": item.label, "method": config.method, "score": config.score,
        "targets": [classifier.class_names[t] for t in explained.targets],
        "target_probability": reference,
        "top5": {classifier.class_names[i]: float(explained.probabilities[i])
                 for i in np.argsort(-explained.probabilities)[:5]},
        "seconds": len(item.logmel) / recipe.frame_rate, "reconstruction": method,
        "mask": {"threshold": args.threshold, "binary": not args.soft, "smooth": list(args.smooth),
                 "area": float((mask > 0).mean())},
        "kept": explain.kept_probability(classifier, reference, {
            k: audios[k] for k in ("salient", "random", "complement")}, explained.targets),
        "files": {name: f"{name}.wav" for name in WAVS} | {"figure": "figure.png"},
    }
    if args.curve_steps:
        summary["curves"] = explain.deletion_insertion(classifier, explained, args.curve_steps,
                                                       args.baseline)
    figure(explained, mask, audios, recipe, summary, out / "figure.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def figure(explained: explain.Saliency, mask: np.ndarray, audios: dict[str, np.ndarray],
           recipe: AudioRecipe, summary: dict, path: Path) -> None:
    """Log-mel, saliency, mask, masked log-mel (time in s, frequency in Hz) and the waveforms."""
    floor = np.log(recipe.log_offset)
    mel = np.exp(explained.logmel) - recipe.log_offset
    masked = np.log(np.maximum(mask * mel, 0) + recipe.log_offset)
    panels = [("log-mel", explained.logmel, "magma", None),
              ("saliency (normalised)", explain.normalise(explained.saliency), "viridis", (0, 1)),
              (f"mask ({summary['mask']['threshold']}, area {summary['mask']['area']:.0%})", mask,
               "gray", (0, 1)),
              ("masked log-mel", masked, "magma", (floor, explained.logmel.max()))]
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(10, 13), constrained_layout=True)
    for ax, (title, values, cmap, limits) in zip(axes, panels, strict=False):
        image = librosa.display.specshow(
            values.T, sr=recipe.sample_rate, hop_length=recipe.hop_length, x_axis="time",
            y_axis="mel", fmin=recipe.fmin, fmax=recipe.fmax, htk=True, cmap=cmap, ax=ax,
            vmin=None if limits is None else limits[0], vmax=None if limits is None else limits[1])
        ax.set(title=title, xlabel="time (s)", ylabel="frequency (Hz)")
        fig.colorbar(image, ax=ax)
    wave_ax = axes[-1]
    for name in WAVS:
        samples = audios[name]
        wave_ax.plot(np.arange(len(samples)) / recipe.sample_rate, samples, lw=0.5, label=name,
                     alpha=0.7)
    wave_ax.set(title="waveforms", xlabel="time (s)", ylabel="amplitude")
    wave_ax.legend(loc="upper right")
    targets = ", ".join(summary["targets"])
    fig.suptitle(f"{summary['name']}: {summary['method']} saliency of {targets}"
                 f" (p = {summary['target_probability']:.3f})")
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# Many recordings: progress, index page, method table.
# ------------------------------------------------------------------------------------------------


def explain_all(classifier: Classifier, items: list[Item], args: argparse.Namespace, out: Path,
                method: str | None = None) -> list[dict]:
    summaries = []
    for number, item in enumerate(items, 1):
        start = time.perf_counter()
        summary = explain_item(classifier, item, args, out / item.name, method)
        summary["folder"] = item.name
        summaries.append(summary)
        kept = summary["kept"]
        print(f"[{number}/{len(items)}] {item.name}: {', '.join(summary['targets'])} "
              f"p={summary['target_probability']:.3f} kept salient {kept['salient']['kept']:.2f} "
              f"random {kept['random']['kept']:.2f} complement {kept['complement']['kept']:.2f} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
    if len(items) > 1 or args.split:
        write_index(out, summaries)
    return summaries


def mean_metrics(summaries: list[dict]) -> dict[str, float]:
    """Means over clips of the faithfulness numbers (curves only when computed)."""
    metrics = {f"kept_{k}": statistics.mean(s["kept"][k]["kept"] for s in summaries)
               for k in ("salient", "random", "complement")}
    if all("curves" in s for s in summaries):
        for key in ("deletion_auc", "insertion_auc"):
            metrics[key] = statistics.mean(s["curves"][key] for s in summaries)
    return metrics


def write_index(out: Path, summaries: list[dict]) -> Path:
    """index.html: each clip's figure, players for its WAVs, and its faithfulness numbers."""
    means = mean_metrics(summaries)
    rows = []
    for s in summaries:
        folder = quote(s["folder"])
        players = "".join(f'<p>{name}<br><audio controls preload="none" '
                          f'src="{folder}/{quote(s["files"][name])}"></audio></p>' for name in WAVS)
        curves = (f"deletion AUC {s['curves']['deletion_auc']:.3f}, insertion AUC "
                  f"{s['curves']['insertion_auc']:.3f}<br>" if "curves" in s else "")
        kept = ", ".join(f"{k} {s['kept'][k]['kept']:.2f}" for k in ("salient", "random",
                                                                       "complement"))
        rows.append(
            f"<tr><td><b>{html.escape(s['name'])}</b><br>label: {html.escape(str(s['label']))}"
            f"<br>explained: {html.escape(', '.join(s['targets']))} "
            f"(p = {s['target_probability']:.3f})<br>{curves}kept probability: {kept}"
            f"<br><a href=\"{folder}/summary.json\">summary.json</a></td>"
            f"<td>{players}</td><td><a href=\"{folder}/figure.png\">"
            f"<img src=\"{folder}/figure.png\""
            f" width=\"480\" alt=\"figure of {html.escape(s['name'])}\"></a></td></tr>")
    mean_text = ", ".join(f"{k} {v:.3f}" for k, v in means.items())
    baseline = summaries[0].get("curves", {}).get("baseline", "mean")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            "<title>asf_jax explanations</title></head>\n<body>\n"
            f"<h1>Explanations ({len(summaries)} clips, {html.escape(summaries[0]['method'])})</h1>"
            f"\n<p>Means: {html.escape(mean_text)}. Kept = re-classified target probability of "
            "the reconstruction over the original's; curves remove/add the most salient cells "
            f"(removed cells set to the {html.escape(baseline)}"
            " log-mel).</p>\n<table border=\"1\">\n<tr><th>clip</th><th>audio</th><th>figure</th>"
            "</tr>\n" + "\n".join(rows) + "\n</table>\n</body>\n</html>\n")
    path = out / "index.html"
    path.write_text(page)
    return path


def compare(classifier: Classifier, items: list[Item], args: argparse.Namespace,
            methods: list[str]) -> list[dict]:
    """Explain every clip with each method; OUT/compare.md and compare.json hold the mean table."""
    table = []
    for method in methods:
        print(f"method {method}", flush=True)
        summaries = explain_all(classifier, items, args, args.out / method, method)
        table.append({"method": method, "clips": len(items)} | mean_metrics(summaries))
    columns = [c for c in table[0] if c not in ("method", "clips")]
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {row['method']} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |"
              for row in table]
    (args.out / "compare.md").write_text("\n".join(lines) + "\n")
    (args.out / "compare.json").write_text(json.dumps(table, indent=1))
    print("\n".join(lines))
    return table


# ------------------------------------------------------------------------------------------------
# Timing.
# ------------------------------------------------------------------------------------------------


def profile(classifier: Classifier, samples: np.ndarray, config: explain.SaliencyConfig,
            spec: explain.MaskSpec, n_iter: int = 32, repeats: int = 5) -> dict[str, float]:
    """Median seconds per stage on one recording (a first, untimed run compiles)."""
    recipe = classifier.recipe
    state: dict = {}
    stages: dict[str, Callable[[], object]] = {
        "logmel": lambda: state.update(logmel=audio.logmel(samples, recipe)),
        "saliency": lambda: state.update(explained=explain.explain_logmel(
            classifier, state["logmel"], config=config)),
        "mask": lambda: state.update(mask=explain.make_mask(state["explained"].saliency, spec)),
        "phase": lambda: reconstruct.phase_preserving(samples, state["mask"], recipe),
        "griffinlim": lambda: reconstruct.from_logmel(state["logmel"], state["mask"], recipe,
                                                      len(samples), n_iter),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    for repeat in range(repeats + 1):
        for name, stage in stages.items():
            start = time.perf_counter()
            stage()
            if repeat:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    medians["total_phase"] = sum(medians[k] for k in ("logmel", "saliency", "mask", "phase"))
    medians["total_griffinlim"] = sum(medians[k] for k in ("logmel", "saliency", "mask",
                                                           "griffinlim"))
    return medians


# ------------------------------------------------------------------------------------------------
# Entry point.
# ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, classifier: Classifier | None = None) -> list[dict]:
    """Everything `main` does, with an optional already-loaded classifier (tests, notebooks)."""
    classifier = classifier or load_classifier(args.ckpt)
    recipe = classifier.recipe
    items = list(split_items(args, recipe) if args.split else audio_items(args.audio, recipe))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile:
        first = items[0]
        if first.samples is None:
            raise SystemExit("--profile needs audio (not only stored log-mels)")
        timings = profile(classifier, first.samples, saliency_config(args), mask_spec(args),
                          args.n_iter, args.repeats)
        (args.out / "profile.json").write_text(json.dumps(timings, indent=1))
        print(" ".join(f"{k} {v:.3f}s" for k, v in timings.items()))
    if args.compare:
        return compare(classifier, items, args, args.compare.split(","))
    if len(items) == 1 and not args.split:
        return [explain_item(classifier, items[0], args, args.out)]
    return explain_all(classifier, items, args, args.out)


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
