"""Writing a set: WAV files, manifest, provenance and README."""

from __future__ import annotations

import collections
import csv
import dataclasses
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

from asf_jax.datasets.real_sounds.clips import (
    SAMPLE_RATE,
    Clip,
    as_pcm16,
    cross_group_matches,
    deduplicate,
)
from asf_jax.datasets.real_sounds.folds import assign_folds, choose_test_fold
from asf_jax.datasets.real_sounds.packages import PreparationError


@dataclasses.dataclass
class SetSpec:
    """What one set is and how its clips are collected."""

    name: str
    description: str
    collect: Callable[[Path, bool], tuple[list[Clip], dict[str, str]]]  # -> clips, licences
    min_groups: int = 1  # a label must occur in this many groups to be kept
    test_only: bool = False


def safe_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def write_set(spec: SetSpec, clips: list[Clip], licences: dict[str, str], out: Path,
              num_folds: int, started: float) -> dict[str, int]:
    """Write audio, manifest.csv, provenance.csv and README.txt; return counts for the log."""
    clips, copies, conflicts = deduplicate(clips)
    groups_of_label = collections.defaultdict(set)
    for clip in clips:
        groups_of_label[clip.label].add(clip.group)
    rare = sorted(lb for lb, groups in groups_of_label.items() if len(groups) < spec.min_groups)
    clips = [c for c in clips if c.label not in rare]
    if not clips:
        raise PreparationError(f"set {spec.name}: no clips left")
    clips.sort(key=lambda c: (c.source, c.label, c.name))
    # One label (speech backgrounds): there is no classification to leak into.
    matches = cross_group_matches(clips) if len({c.label for c in clips}) > 1 else None
    if matches:
        print(f"  warning: {len(matches)} same-label pairs across source groups look like one "
              "recording (listed in README.txt)", flush=True)

    group_sizes = collections.Counter(c.group for c in clips)
    fold_of_group = assign_folds(group_sizes, num_folds)
    fold_labels: dict[int, set[str]] = collections.defaultdict(set)
    fold_sizes: collections.Counter[int] = collections.Counter()
    for clip in clips:
        fold_labels[fold_of_group[clip.group]].add(clip.label)
        fold_sizes[fold_of_group[clip.group]] += 1
    test_fold = None if spec.test_only else choose_test_fold(fold_labels, fold_sizes)

    root = out / spec.name
    shutil.rmtree(root / "audio", ignore_errors=True)
    rows, provenance = [], []
    for clip in clips:
        relative = Path("audio") / clip.source / clip.label / f"{clip.name}.wav"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(root / relative, as_pcm16(clip.samples), SAMPLE_RATE, subtype="PCM_16")
        fold = fold_of_group[clip.group]
        split = "test" if spec.test_only or fold == test_fold else "train"
        rows.append((relative.as_posix(), clip.label, clip.source, fold, split))
        provenance.append((relative.as_posix(), clip.group, clip.origin,
                           f"{len(clip.samples) / SAMPLE_RATE:.3f}"))
    with open(root / "manifest.csv", "w", newline="") as file:
        csv.writer(file).writerows([("path", "label", "source", "fold", "split"), *rows])
    with open(root / "provenance.csv", "w", newline="") as file:
        csv.writer(file).writerows([("path", "group", "origin", "seconds"), *provenance])
    (root / "README.txt").write_text(readme(spec, clips, rows, licences, fold_of_group, test_fold,
                                            {"duplicates": copies, "conflicts": conflicts,
                                             "rare": rare}, matches,
                                            time.perf_counter() - started))
    return {"clips": len(clips), "labels": len(groups_of_label) - len(rare),
            "sources": len({c.source for c in clips}), "folds": max(fold_of_group.values()),
            "duplicates": copies, "conflicts": conflicts}


def count_table(clips: list[Clip], rows: list[tuple], fold_of_group: dict[str, int]) -> list[str]:
    """Clips per source x label as a matrix: sources as rows (with fold and split) or, when
    there are many labels and few sources, labels as rows; else one line per (label, source)."""
    labels = sorted({c.label for c in clips})
    sources = sorted({c.source for c in clips})
    counts = collections.Counter((c.label, c.source) for c in clips)
    split_of = {row[2]: row[4] for row in rows}
    fold_of = {c.source: fold_of_group[c.group] for c in clips}
    if len(labels) <= 20:
        return matrix([f"{s} (fold {fold_of[s]}, {split_of[s]})" for s in sources], labels,
                      lambda r, c: counts[labels[c], sources[r]])
    if len(sources) <= 8:
        legend = [f"  {s}: fold {fold_of[s]}, {split_of[s]}" for s in sources]
        return legend + matrix(labels, sources, lambda r, c: counts[labels[r], sources[c]])
    return [f"  {label:<24} {source:<32} {counts[label, source]}"
            for label in labels for source in sources if counts[label, source]]


def matrix(row_names: list[str], column_names: list[str], count: Callable[[int, int], int]
           ) -> list[str]:
    """A text table of counts with a total column and a total row."""
    width = max(len(name) for name in [*row_names, "total"])
    cell = max(6, *(len(name) for name in column_names))
    lines = [" " * width + " " + " ".join(f"{n:>{cell}}" for n in column_names) + "   total"]
    for r, name in enumerate(row_names):
        values = [count(r, c) for c in range(len(column_names))]
        lines.append(f"{name:<{width}} " + " ".join(f"{v:>{cell}}" for v in values)
                     + f"  {sum(values):>6}")
    totals = [sum(count(r, c) for r in range(len(row_names))) for c in range(len(column_names))]
    lines.append(f"{'total':<{width}} " + " ".join(f"{v:>{cell}}" for v in totals)
                 + f"  {sum(totals):>6}")
    return lines


def readme(spec: SetSpec, clips: list[Clip], rows: list[tuple], licences: dict[str, str],
           fold_of_group: dict[str, int], test_fold: int | None, dropped: dict,
           matches: list[tuple[Clip, Clip, float]] | None, seconds: float) -> str:
    sources = sorted({c.source for c in clips})
    durations = np.array([len(c.samples) / SAMPLE_RATE for c in clips])
    groups = collections.defaultdict(list)
    for clip in clips:
        if clip.source not in groups[clip.group]:
            groups[clip.group].append(clip.source)
    by_licence = collections.defaultdict(list)
    for source in sources:
        by_licence[licences[source]].append(source)
    split_rule = ("every clip is test (a probe set, one clip per label)" if test_fold is None
                  else f"test = fold {test_fold}: the fold covering the most labels, the smallest "
                       "of those, then the highest number")
    return "\n".join([
        f"{spec.name}: {spec.description}",
        "",
        "Made by scripts/prepare_real_sounds.py (asf_jax) from Debian/PyPI packages; nothing "
        "else downloaded.",
        f"{len(clips)} clips, {len({c.label for c in clips})} labels, {len(sources)} sources; "
        f"16-bit PCM WAV, mono, {SAMPLE_RATE} Hz; prepared in {seconds:.0f} s.",
        "Each clip is peak-normalised to -6 dBFS (unless --keep_levels); one-shot recordings "
        "(all but instrument notes, which are 2.5 s) lose their tail below -60 dB of the peak.",
        f"Dropped: {dropped['duplicates']} exact duplicates, {dropped['conflicts']} clips whose "
        f"identical copies carry different labels, labels in fewer than {spec.min_groups} "
        f"source groups: {', '.join(dropped['rare']) or 'none'}.",
        f"Durations (s): min {durations.min():.2f}, median {np.median(durations):.2f}, "
        f"max {durations.max():.2f}; shorter than 5.119 s: {np.sum(durations < 5.119)}, "
        f"than 1 s: {np.sum(durations < 1)}, than 0.2 s: {np.sum(durations < 0.2)}.",
        "",
        "manifest.csv: path,label,source,fold,split. Folds hold whole source groups "
        "(sources that share recordings), balanced greedily by clip count; " + split_rule + ".",
        "provenance.csv: path,group,origin,seconds (the package file, note or word of each clip).",
        "Source groups with more than one source: " + ("; ".join(
            f"{g} = {', '.join(s)}" for g, s in sorted(groups.items()) if len(s) > 1) or "none"),
        "Same-label clips of different groups that look like one recording (log-mel cosine >= "
        "0.95 and waveform correlation >= 0.95 over the first second): "
        + ("not checked (one label)" if matches is None else str(len(matches))),
        *(f"  {score:.3f} {a.source}/{a.label}/{a.name} ~ {b.source}/{b.label}/{b.name}"
          for a, b, score in (matches or [])[:30]),
        "",
        "Counts per source x label:",
        *count_table(clips, rows, fold_of_group),
        "",
        "Licences and packages:",
        *(f"  {', '.join(s)}: {text}" for text, s in sorted(by_licence.items(),
                                                           key=lambda item: item[1])),
        "",
    ])
