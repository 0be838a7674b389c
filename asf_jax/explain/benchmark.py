"""Benchmark saliency methods where the answer is known: localisation, faithfulness and sanity.

    python -m asf_jax.explain.benchmark --ckpt CKPT --events EVENTS --event_split test \\
        --backgrounds SPEECH_MANIFEST [OTHER ...] --out BENCH \\
        --methods grad gradcam "mask:steps=40" --count 60

EVENTS and each background list are a manifest CSV (path,label[,split]) or a VGG-Sound-style
manual dir; a mixture's background never holds recordings labelled like its event. Each of
`--count` mixtures places an event of a class the model knows into the background
(asf_jax/explain/mixtures.py), cycling through the classes, the SNRs and the event lengths, and
every method explains that class on it. Per mixture and method (BENCH/rows.jsonl):

- localisation against the event (asf_jax/explain/localisation.py), on the time profile and on
  the cells; whether the model predicted the event's class (mean over the explained windows);
- faithfulness of the explainer's mask (asf_jax/explain/faithfulness.py): AI, AD, AG, FF and
  Fid-In on the log-mel under each removal operator and on the resynthesised audio, the kept
  probability of the salient, complement and random-mask audio, deletion/insertion AUCs under
  each operator, and the map's sparseness and complexity;
- the sanity check (asf_jax/explain/sanity.py) on the first `--sanity_clips` mixtures: the rank
  correlation with the original map after randomising the head, then stage 5, ..., the stem;
- the share of the saliency through each pathway, and the CPU seconds of the explanation.

BENCH/benchmark.md holds the tables (means; localisation of wrong predictions apart) with the
chance levels and each method's mean rank over the headline metrics; benchmark.json the same
numbers; mixtures.csv the ground truth (and BENCH/audio/*.wav with --save_audio).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile

from asf_jax import audio
from asf_jax.classifier import Classifier, load_classifier
from asf_jax.explain import faithfulness, localisation, masks, mixtures, reconstruct, sanity
from asf_jax.explain.objectives import Target
from asf_jax.explain.saliency import Saliency, SaliencyConfig, explain_logmel

# Headline metrics for the mean rank: (column, higher is better).
HEADLINE = (("time_mass", True), ("time_pointing", True), ("time_auroc", True),
            ("tf_mass", True), ("tf_auroc", True), ("audio_AD", False), ("audio_AG", True),
            ("audio_FF", True), ("audio_FidIn", True), ("logmel_mean_AD", False),
            ("logmel_mean_FF", True), ("insertion_mean", True), ("deletion_mean", False),
            ("sanity_stem", False))


@dataclasses.dataclass(frozen=True)
class BenchmarkOptions:
    """What is measured besides localisation."""

    mask: masks.MaskSpec = masks.MaskSpec(sigma=(1.0, 1.0))
    operators: tuple[str, ...] = faithfulness.OPERATORS
    curve_steps: int = 6
    sanity_clips: int = 6
    faithfulness: bool = True  # False: localisation (and sanity) only
    audio: bool = True  # faithfulness of the resynthesised audio
    seed: int = 0


def split_specs(text: str) -> list[str]:
    """"grad,gradcam:layer=4,score=logit" -> ["grad", "gradcam:layer=4,score=logit"]: a comma
    starts a new method unless what follows is another key=value of the one before."""
    specs: list[str] = []
    for token in filter(None, (t.strip() for t in text.split(","))):
        if specs and "=" in token and ":" not in token and ":" in specs[-1]:
            specs[-1] += "," + token
        else:
            specs.append(token)
    return specs


# ------------------------------------------------------------------------------------------------
# One mixture, one method.
# ------------------------------------------------------------------------------------------------


def audio_metrics(classifier: Classifier, mixture: mixtures.Mixture, mask: np.ndarray,
                  target: int, rng: np.random.Generator) -> dict[str, float]:
    """L-MAC's metrics and the kept probabilities of the resynthesised (phase-preserving) audio."""
    random = masks.random_mask(mask, rng)
    salient, complement, shuffled = reconstruct.phase_preserving_audio(
        mixture.samples, np.stack([mask, 1 - mask, random]), classifier.recipe)
    original, kept, removed, chance = (classifier.predict(x) for x in (
        mixture.samples, salient, complement, shuffled))
    row = {f"audio_{k}": v for k, v in faithfulness.lmac_metrics(original, kept, removed,
                                                                 (target,)).items()}
    reference = max(float(original[target]), 1e-12)
    return row | {"kept_salient": float(kept[target]) / reference,
                  "kept_complement": float(removed[target]) / reference,
                  "kept_random": float(chance[target]) / reference}


def faithfulness_row(classifier: Classifier, mixture: mixtures.Mixture, explained: Saliency,
                     target: int, options: BenchmarkOptions) -> dict[str, float]:
    """The faithfulness columns of one explanation (its mask's, and its curves')."""
    mask = masks.make_mask(explained.saliency, options.mask)
    row = {"area": float(mask.mean())}
    for operator, metrics in faithfulness.logmel_metrics(classifier, explained, mask,
                                                         options.operators).items():
        row |= {f"logmel_{operator}_{k}": v for k, v in metrics.items()}
    for operator in options.operators:
        curves = faithfulness.deletion_insertion(classifier, explained, options.curve_steps,
                                                 operator)
        row[f"deletion_{operator}"] = curves["deletion_auc"]
        row[f"insertion_{operator}"] = curves["insertion_auc"]
    if options.audio:
        row |= audio_metrics(classifier, mixture, mask, target,
                             np.random.default_rng(options.seed))
    return row


def evaluate(classifier: Classifier, mixture: mixtures.Mixture, config: SaliencyConfig,
             options: BenchmarkOptions, check_sanity: bool) -> dict:
    """Every measurement of one method on one mixture, as a flat row."""
    target = classifier.class_names.index(mixture.label)
    logmel = audio.logmel(mixture.samples, classifier.recipe)
    start = time.process_time()
    explained = explain_logmel(classifier, logmel, Target((target,)), config=config,
                               seed=options.seed)
    seconds = time.process_time() - start
    predicted = int(np.argmax(explained.probabilities))
    row = {"mixture": mixture.name, "label": mixture.label, "snr_db": mixture.snr_db,
           "event_seconds": mixture.length,
           "method": config.name, "predicted": classifier.class_names[predicted],
           "correct": predicted == target,
           "probability": float(explained.probabilities[target]), "cpu_seconds": seconds}
    row |= localisation.localisation(explained.saliency, mixture.event_frames,
                                     mixture.event_cells)
    row["sparseness"] = faithfulness.sparseness(explained.saliency)
    row["complexity"] = faithfulness.complexity(explained.saliency)
    row |= {f"pathway_{name}": share for name, share in explained.pathway_share.items()}
    if options.faithfulness:
        row |= faithfulness_row(classifier, mixture, explained, target, options)
    if check_sanity:
        def explain(model: Classifier) -> np.ndarray:
            return explain_logmel(model, logmel, Target((target,)), config=config,
                                  seed=options.seed).saliency
        row |= {f"sanity_{part}": rho for part, rho in sanity.cascading_randomisation(
            classifier, explain).items()}
    return row


# ------------------------------------------------------------------------------------------------
# Tables.
# ------------------------------------------------------------------------------------------------


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.mean(values) if values else None


def summarise(rows: list[dict]) -> list[dict]:
    """Per method: means of every numeric column over the mixtures where the model predicted
    the event's class (as L-MAC explains the predicted class), localisation also over the wrong
    ones (`wrong_<metric>`), the sanity check over the mixtures that had it; `mean_rank` over
    `HEADLINE` (1 is best)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    numeric = [k for k, v in rows[0].items() if isinstance(v, (int, float))
               and not isinstance(v, bool) and k != "snr_db"]
    numeric += sorted({k for r in rows for k in r if k.startswith("sanity_")} - set(numeric))
    table = []
    for method in methods:
        own = [r for r in rows if r["method"] == method]
        correct = [r for r in own if r["correct"]]
        wrong = [r for r in own if not r["correct"]]
        entry: dict = {"method": method, "mixtures": len(own), "correct": len(correct) / len(own)}
        for key in numeric:
            entry[key] = _mean(own if key.startswith("sanity_") else correct, key)
            if key.startswith(("time_", "tf_")) and "chance" not in key:
                entry[f"wrong_{key}"] = _mean(wrong, key)
        table.append(entry)
    for key, higher in HEADLINE:
        values = [row.get(key) for row in table]
        if any(v is None for v in values):
            continue
        order = sorted(range(len(table)), key=lambda i: -values[i] if higher else values[i])
        for rank, index in enumerate(order, 1):
            table[index].setdefault("ranks", {})[key] = rank
    for row in table:
        row["mean_rank"] = statistics.mean(row["ranks"].values()) if row.get("ranks") else None
    return table


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(table: list[dict], columns: list[tuple[str, str]], digits: int = 3) -> str:
    lines = ["| method | " + " | ".join(title for _, title in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for row in table:
        lines.append(f"| `{row['method']}` | "
                     + " | ".join(_cell(row.get(key), digits) for key, _ in columns) + " |")
    return "\n".join(lines)


def by_condition(rows: list[dict], key: str, condition: str) -> str:
    """Markdown: `key` (correct predictions) per method and value of `condition`."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    values = sorted({r[condition] for r in rows}, reverse=condition == "snr_db")
    lines = ["| method | " + " | ".join(f"{condition} {v:g}" for v in values) + " |",
             "|---" * (len(values) + 1) + "|"]
    for method in methods:
        cells = [_cell(_mean([r for r in rows if r["method"] == method and r[condition] == v
                              and r["correct"]], key)) for v in values]
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(rows: list[dict], table: list[dict], operators: Iterable[str]) -> str:
    """benchmark.md: conditions, chance levels and the tables."""
    first = rows[0]
    correct = [r for r in rows if r["correct"]]
    chance = {"method": "chance"} | {
        f"{where}_{metric}": _mean(correct, f"{where}_chance_{metric}")
        for where in ("time", "tf") for metric in localisation.METRICS}
    lines = [f"# Saliency benchmark ({table[0]['mixtures']} mixtures per method)", "",
             f"The model predicted the event's class on {len(correct) / len(rows):.0%} of the "
             "mixtures; every metric is averaged over those (localisation of wrong predictions "
             "apart; the sanity check over the mixtures that had it). `chance`: a map that "
             "knows nothing.", "",
             "## Localisation", "",
             markdown_table(table + [chance], [("correct", "predicted"), ("time_mass", "time mass"),
                                    ("time_rank", "time rank"), ("time_pointing", "pointing"),
                                    ("time_auroc", "time AUROC"), ("tf_mass", "TF mass"),
                                    ("tf_rank", "TF rank"), ("tf_pointing", "TF pointing"),
                                    ("tf_auroc", "TF AUROC"),
                                    ("wrong_time_mass", "time mass (wrong)"),
                                    ("wrong_tf_auroc", "TF AUROC (wrong)"),
                                    ("mean_rank", "mean rank")]), "",
             "### Time mass by SNR (dB)", "", by_condition(rows, "time_mass", "snr_db"), "",
             "### Time mass by event length (s)", "",
             by_condition(rows, "time_mass", "event_seconds"), "",
             "## Faithfulness of the explainer's mask", ""]
    if "area" not in first:
        return "\n".join(lines[:-3] + [markdown_table(table, [
            ("sparseness", "sparseness"), ("complexity", "complexity")]
            + [(f"sanity_{p}", f"ρ {p}") for p in sanity.CASCADE]
            + [("cpu_seconds", "CPU s")]), ""])
    columns = [("area", "mask area")]
    for prefix, title in [(f"logmel_{op}", f"log-mel {op}") for op in operators] + (
            [("audio", "audio")] if "audio_AI" in first else []):
        columns += [(f"{prefix}_{k}", f"{title} {k}") for k in faithfulness.LMAC_METRICS]
    lines += [markdown_table(table, columns, 2), "", "## Curves, map, audio, sanity, cost", ""]
    columns = [(f"{kind}_{op}", f"{kind} AUC ({op})") for op in operators
               for kind in ("deletion", "insertion")]
    columns += [("kept_salient", "kept salient"), ("kept_complement", "kept complement"),
                ("kept_random", "kept random")] if "kept_salient" in first else []
    columns += [("sparseness", "sparseness"), ("complexity", "complexity")]
    columns += [(f"sanity_{p}", f"ρ {p}") for p in sanity.CASCADE]
    columns += [(k, k.replace("_", " ")) for k in first if k.startswith("pathway_")]
    columns += [("cpu_seconds", "CPU s")]
    lines += [markdown_table(table, columns), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Running it.
# ------------------------------------------------------------------------------------------------


def run(classifier: Classifier, events: list[mixtures.Recording],
        backgrounds: list[mixtures.Recording], spec: mixtures.MixtureSpec,
        methods: list[SaliencyConfig], options: BenchmarkOptions, out: Path,
        save_audio: bool = False) -> list[dict]:
    """Make the mixtures, evaluate every method on each; writes OUT/rows.jsonl as it goes and
    the tables at the end; returns the summary table."""
    unknown = sorted({e.label for e in events} - set(classifier.class_names))
    if unknown:
        raise ValueError(f"event labels the model does not know: {unknown}")
    if not events or not backgrounds:
        raise ValueError(f"need events and backgrounds; got {len(events)} events and "
                         f"{len(backgrounds)} background recordings")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    ground_truth = []
    with (out / "rows.jsonl").open("w") as log:
        for index in range(spec.count):
            mixture = mixtures.make_mixture(index, events, backgrounds, spec, classifier.recipe)
            ground_truth.append(mixture.row(classifier.recipe))
            if save_audio:
                (out / "audio").mkdir(exist_ok=True)
                soundfile.write(out / "audio" / f"{mixture.name}.wav", mixture.samples,
                                classifier.recipe.sample_rate, subtype="PCM_16")
            for config in methods:
                row = evaluate(classifier, mixture, config, options,
                               index < options.sanity_clips)
                rows.append(row)
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(f"[{index + 1}/{spec.count}] {mixture.name} {config.name}: "
                      f"{'ok' if row['correct'] else 'wrong'} time mass {row['time_mass']:.2f} "
                      f"(chance {row['time_chance_mass']:.2f}) TF AUROC {row['tf_auroc']:.2f} "
                      f"({row['cpu_seconds']:.1f} s)", flush=True)
    with (out / "mixtures.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ground_truth[0]))
        writer.writeheader()
        writer.writerows(ground_truth)
    table = summarise(rows)
    (out / "benchmark.json").write_text(json.dumps(table, indent=1))
    text = report(rows, table, options.operators)
    (out / "benchmark.md").write_text(text)
    print(text)
    return table


def read_rows(path: Path) -> list[dict]:
    """The rows of one or more runs' rows.jsonl (to re-tabulate runs made separately)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m asf_jax.explain.benchmark", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--ckpt", help="checkpoint, training workdir or .pyth")
    parser.add_argument("--events", type=Path, help="event recordings: manifest CSV or manual dir")
    parser.add_argument("--event_split", help="use only this split of the events (e.g. test)")
    parser.add_argument("--backgrounds", type=Path, nargs="+",
                        help="background recordings: manifest CSV(s) or manual dir(s)")
    parser.add_argument("--background_split", help="use only this split of the backgrounds")
    parser.add_argument("--methods", default="grad,gradxinput,gradcam",
                        help="comma-separated method specs, method[:key=value,...] "
                             "(see SaliencyConfig.parse); default grad,gradxinput,gradcam")
    parser.add_argument("--count", type=int, default=60, help="mixtures (default 60)")
    parser.add_argument("--seconds", type=float, default=10.0, help="mixture length")
    parser.add_argument("--snrs", default="6,0,-6", help="SNRs in dB, cycled (default 6,0,-6)")
    parser.add_argument("--lengths", default="0.5,1,2",
                        help="event lengths in s, cycled (default 0.5,1,2)")
    parser.add_argument("--noise_db", type=float, default=-20.0,
                        help="white noise level relative to the background recordings")
    parser.add_argument("--threshold", default="std:1", help="mask rule, as the explainer's")
    parser.add_argument("--curve_steps", type=int, default=6,
                        help="points of the deletion/insertion curves")
    parser.add_argument("--sanity_clips", type=int, default=6,
                        help="mixtures that get the randomisation check (each costs 6 maps)")
    parser.add_argument("--only_localisation", action="store_true",
                        help="skip every faithfulness measurement (quick comparisons)")
    parser.add_argument("--no_audio", action="store_true",
                        help="skip the faithfulness of the resynthesised audio")
    parser.add_argument("--save_audio", action="store_true", help="write the mixtures as WAVs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retabulate", type=Path, nargs="+",
                        help="only rebuild the tables from these rows.jsonl files into --out")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.retabulate and not (args.ckpt and args.events and args.backgrounds):
        parser.error("--ckpt, --events and --backgrounds are needed (unless --retabulate)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = BenchmarkOptions(masks.MaskSpec.parse(args.threshold, sigma=(1.0, 1.0)),
                               curve_steps=args.curve_steps, sanity_clips=args.sanity_clips,
                               faithfulness=not args.only_localisation,
                               audio=not args.no_audio, seed=args.seed)
    try:
        if args.retabulate:
            rows = [r for path in args.retabulate for r in read_rows(path)]
            args.out.mkdir(parents=True, exist_ok=True)
            table = summarise(rows)
            (args.out / "benchmark.json").write_text(json.dumps(table, indent=1))
            (args.out / "benchmark.md").write_text(report(rows, table, options.operators))
            print((args.out / "benchmark.md").read_text())
            return 0
        methods = [SaliencyConfig.parse(s) for s in split_specs(args.methods)]
        spec = mixtures.MixtureSpec(args.count, args.seconds,
                                    tuple(float(s) for s in args.snrs.split(",")),
                                    tuple(float(s) for s in args.lengths.split(",")),
                                    args.noise_db, seed=args.seed)
        events = mixtures.read_recordings(args.events, args.event_split)
        backgrounds = [r for path in args.backgrounds
                       for r in mixtures.read_recordings(path, args.background_split)]
        run(load_classifier(args.ckpt), events, backgrounds, spec, methods, options, args.out,
            args.save_audio)
    except (audio.AudioError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
