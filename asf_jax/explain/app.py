"""Explain recordings end to end: saliency, mask, salient audio, figure, summary, index page.

For each recording: saliency of the predicted (or a chosen) class over the whole log-mel, a mask,
the salient audio and its complement (phase-preserving when the audio is at hand, else Griffin-Lim),
a figure, and a JSON summary with faithfulness numbers (re-classified reconstructions, a random mask
of the same area, deletion/insertion curves). Several recordings also get an index.html to browse,
and several methods a comparison table. The command line is asf_jax/explain/cli.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile

from asf_jax import audio
from asf_jax.classifier import Classifier
from asf_jax.explain import faithfulness, masks, objectives, reconstruct, report, saliency
from asf_jax.recipe import AudioRecipe

RECONSTRUCTIONS = ("auto", "phase", "griffinlim")


@dataclasses.dataclass(frozen=True)
class ExplainOptions:
    """How every recording is explained."""

    saliency: saliency.SaliencyConfig = saliency.SaliencyConfig.parse(saliency.DEFAULT_SPEC)
    mask: masks.MaskSpec = masks.MaskSpec()
    target: str | None = None  # class name or index; None: the predicted class(es)
    target_text: str | None = None  # or any label text (models with an LEP head)
    contrast: str | None = None  # explain the target against this class (or text)
    top_k: int = 1  # without a target: explain the sum of the k most probable classes' scores
    reconstruction: str = "auto"  # phase-preserving when the audio is at hand, else Griffin-Lim
    n_iter: int = 32  # Griffin-Lim iterations
    curve_steps: int = 11  # points of the deletion/insertion curves; 0 skips them
    baseline: str = "mean"  # removal operator of the curves: the clip's mean or the log floor
    operators: tuple[str, ...] = faithfulness.OPERATORS  # of L-MAC's metrics on the log-mel
    seed: int = 0  # SmoothGrad noise and random masks

    def __post_init__(self) -> None:
        if self.reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}")


@dataclasses.dataclass(frozen=True)
class SplitClips:
    """Clips of a built dataset split to explain, with the audio from the manual dir if given."""

    data_dir: Path
    split: str = "test"
    num: int = 10
    manual_dir: Path | None = None
    config: str = "slowfast"
    name: str = "vggsound"  # the dataset's name in data_dir (`build --name`)


@dataclasses.dataclass
class Item:
    """One recording to explain: its audio when available, else only its log-mel."""

    name: str
    logmel: np.ndarray  # (frames, mel)
    samples: np.ndarray | None  # (samples,) at the recipe's rate
    label: str | None = None


# ------------------------------------------------------------------------------------------------
# Inputs.
# ------------------------------------------------------------------------------------------------


def audio_items(paths: Iterable[Path], recipe: AudioRecipe) -> Iterator[Item]:
    for path in paths:
        samples = audio.load_audio(path, recipe.sample_rate)
        yield Item(Path(path).stem, audio.logmel(samples, recipe), samples)


def split_items(clips: SplitClips, recipe: AudioRecipe) -> Iterator[Item]:
    """Clips of a built split: the audio from `manual_dir` if found, else the first view only."""
    from asf_jax.datasets import load_split  # TFDS is needed only here

    split = load_split(clips.data_dir, clips.split, clips.config, clips.name)
    for index in range(min(clips.num, split.num_examples)):
        example = split.source[index]
        filename = example["filename"]
        filename = filename.decode() if isinstance(filename, bytes) else str(filename)
        label = split.class_names[int(example["label"])]
        name = f"{index:04d}_{Path(filename).stem}"
        try:
            if clips.manual_dir is None:
                raise audio.AudioError(filename, "no manual dir given")
            samples = audio.load_audio(clips.manual_dir / filename, recipe.sample_rate)
        except audio.AudioError as error:
            print(f"  {name}: {error}; Griffin-Lim from the stored first view", file=sys.stderr)
            yield Item(name, np.asarray(example["views"][0], np.float32), None, label)
        else:
            yield Item(name, audio.logmel(samples, recipe), samples, label)


# ------------------------------------------------------------------------------------------------
# One recording.
# ------------------------------------------------------------------------------------------------


def reconstruct_item(item: Item, mask_set: dict[str, np.ndarray], recipe: AudioRecipe,
                     mode: str, n_iter: int) -> tuple[dict[str, np.ndarray], str]:
    """Each mask's audio (one batch) and the method: phase-preserving unless told otherwise."""
    samples = item.samples if mode != "griffinlim" else None
    if mode == "phase" and samples is None:
        raise ValueError(f"{item.name}: phase-preserving reconstruction needs the audio")
    length = len(item.samples) if item.samples is not None else None
    audios, method = reconstruct.masked_audio(item.logmel, np.stack(list(mask_set.values())),
                                              recipe, samples, length, n_iter)
    return dict(zip(mask_set, audios, strict=True)), method


def explain_item(classifier: Classifier, item: Item, options: ExplainOptions, out: Path) -> dict:
    """Explain one recording into `out`: WAVs, saliency.npy, figure.png, summary.json; returns
    the summary."""
    recipe = classifier.recipe
    target = objectives.make_target(classifier.class_names, options.target, options.target_text,
                                    options.contrast)
    explained = saliency.explain_logmel(classifier, item.logmel, target, options.top_k,
                                        options.saliency, options.seed)
    mask = masks.make_mask(explained.saliency, options.mask)
    mask_set = {"salient": mask, "complement": 1 - mask,
                "random": masks.random_mask(mask, np.random.default_rng(options.seed))}
    if item.samples is None:  # stored log-mels only: the original is heard through Griffin-Lim
        mask_set["original"] = np.ones_like(mask)
    audios, method = reconstruct_item(item, mask_set, recipe, options.reconstruction,
                                      options.n_iter)
    audio_checks = faithfulness.audio_faithfulness(
        classifier, {k: audios[k] for k in ("salient", "random", "complement")},
        explained.target, item.samples, item.logmel)
    if item.samples is not None:
        audios["original"] = item.samples
    out.mkdir(parents=True, exist_ok=True)
    for name in report.WAVS:
        soundfile.write(out / f"{name}.wav", np.clip(audios[name], -1, 1), recipe.sample_rate,
                        subtype="PCM_16")
    np.save(out / "saliency.npy", explained.saliency)
    summary = {
        "name": item.name, "label": item.label, "method": options.saliency.name,
        "score": "cosine" if explained.target.text is not None else options.saliency.score,
        "target": explained.target.describe(classifier.class_names),
        "targets": [classifier.class_names[t] for t in explained.targets],
        "target_probability": audio_checks["reference"],
        "top5": {classifier.class_names[i]: float(explained.probabilities[i])
                 for i in np.argsort(-explained.probabilities)[:5]},
        "seconds": len(item.logmel) / recipe.frame_rate, "reconstruction": method,
        "mask": {"threshold": options.mask.threshold, "binary": options.mask.binary,
                 "smooth": list(options.mask.sigma), "area": float((mask > 0).mean())},
        "kept": audio_checks["kept"],
        "pathways": explained.pathway_share,
        "sparseness": faithfulness.sparseness(explained.saliency),
        "complexity": faithfulness.complexity(explained.saliency),
        "files": {name: f"{name}.wav" for name in report.WAVS}
        | {"figure": "figure.png", "saliency": "saliency.npy"},
    }
    if "lmac" in audio_checks:
        summary["lmac"] = {"audio": audio_checks["lmac"]} | {
            f"logmel_{operator}": metrics for operator, metrics in faithfulness.logmel_metrics(
                classifier, explained, mask, options.operators,
                options.saliency.window_hop).items()}
    if options.curve_steps:
        summary["curves"] = faithfulness.deletion_insertion(classifier, explained,
                                                            options.curve_steps, options.baseline)
    report.figure(explained, mask, audios, recipe, summary, out / "figure.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


# ------------------------------------------------------------------------------------------------
# Many recordings: progress, index page, method table.
# ------------------------------------------------------------------------------------------------


def explain_all(classifier: Classifier, items: list[Item], options: ExplainOptions, out: Path,
                index_page: bool = True) -> list[dict]:
    """Explain every item into `out/<item name>`, with a progress line per item; several items
    (or `index_page`) also get out/index.html."""
    summaries = []
    for number, item in enumerate(items, 1):
        start = time.perf_counter()
        summary = explain_item(classifier, item, options, out / item.name)
        summary["folder"] = item.name
        summaries.append(summary)
        kept = summary["kept"]
        print(f"[{number}/{len(items)}] {item.name}: {', '.join(summary['targets'])} "
              f"p={summary['target_probability']:.3f} kept salient {kept['salient']['kept']:.2f} "
              f"random {kept['random']['kept']:.2f} complement {kept['complement']['kept']:.2f} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
    if len(items) > 1 or index_page:
        report.write_index(out, summaries)
    return summaries


def compare(classifier: Classifier, items: list[Item], options: ExplainOptions, out: Path,
            methods: list[str]) -> list[dict]:
    """Explain every clip with each method (a spec, as `SaliencyConfig.parse` reads it) into
    out/<method>; out/compare.md holds the table."""
    table = []
    for method in methods:
        print(f"method {method}", flush=True)
        method_options = dataclasses.replace(
            options, saliency=saliency.SaliencyConfig.parse(method))
        folder = re.sub(r"[^A-Za-z0-9._=-]+", "_", method)
        summaries = explain_all(classifier, items, method_options, out / folder)
        table.append({"method": method, "clips": len(items)} | report.mean_metrics(summaries))
    print(report.write_method_table(out, table))
    return table


def profile(classifier: Classifier, samples: np.ndarray, options: ExplainOptions,
            repeats: int = 5) -> dict[str, float]:
    """Median seconds per stage on one recording (a first, untimed run compiles)."""
    recipe = classifier.recipe
    state: dict = {}
    stages: dict[str, Callable[[], object]] = {
        "logmel": lambda: state.update(logmel=audio.logmel(samples, recipe)),
        "saliency": lambda: state.update(explained=saliency.explain_logmel(
            classifier, state["logmel"], config=options.saliency)),
        "mask": lambda: state.update(mask=masks.make_mask(state["explained"].saliency,
                                                          options.mask)),
        "phase": lambda: reconstruct.phase_preserving(samples, state["mask"], recipe),
        "griffinlim": lambda: reconstruct.from_logmel(state["logmel"], state["mask"], recipe,
                                                      len(samples), options.n_iter),
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
