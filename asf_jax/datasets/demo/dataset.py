"""Writes the demo dataset: the synthesised clips, the files and rows broken on purpose, the lists
and a README that says what is where."""

from __future__ import annotations

import collections
import dataclasses
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from asf_jax.datasets.demo.plan import AUDIO_FOLDERS, ClipPlan, plan_clips, youtube_ids
from asf_jax.datasets.demo.signals import colored_noise
from asf_jax.datasets.demo.sounds import CLASS_NAMES, synthesise
from asf_jax.datasets.synthetic import write_audio, write_lists

README_MARKER = "VGG-Sound-style demo dataset"

# Reasons the builder must skip an entry, each exercised once (malformed rows twice).
BROKEN_REASONS = (
    "corrupt_file", "empty_file", "truncated_file", "missing_file",
    "unknown_label", "unknown_split", "duplicate_row", "malformed_row",
)


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    """What `make_demo_dataset` wrote; `expected_kept` is what the builder should keep per split."""

    seed: int
    classes: int
    good_clips: dict[str, int]  # synthesised class clips per split
    silent_clips: dict[str, int]  # all-zero (valid) clips per split
    expected_kept: dict[str, int]
    broken: dict[str, int]  # reason -> CSV rows the builder must skip
    broken_files: dict[str, str]  # reason -> the undecodable file (relative path)
    csv_rows: int
    formats: dict[str, int]
    sample_rates: dict[int, int]
    channels: dict[int, int]
    short_clips: int  # shorter than one 5.119 s network input
    m4a_written: bool

    def __str__(self) -> str:
        def fmt(d: dict) -> str:
            return ", ".join(f"{k}: {v}" for k, v in d.items())

        return "\n".join([
            f"demo dataset: seed {self.seed}, {self.classes} classes",
            f"  good clips:     {fmt(self.good_clips)} (+ silent: {fmt(self.silent_clips)})",
            f"  expected kept:  {fmt(self.expected_kept)}",
            f"  broken rows:    {fmt(self.broken)}",
            f"  csv rows:       {self.csv_rows}",
            f"  formats:        {fmt(self.formats)}"
            + ("" if self.m4a_written else " (no M4A: ffmpeg not found)"),
            f"  sample rates:   {fmt(self.sample_rates)}",
            f"  channels:       {fmt(self.channels)}",
            f"  short clips:    {self.short_clips} (< 5.119 s)",
        ])


def _count(values: Iterable) -> dict:
    """How often each value occurs, sorted by value."""
    return dict(sorted(collections.Counter(values).items()))


def _truncated_wav(sr: int) -> bytes:
    """A WAV header announcing one second of PCM-16 audio, followed by no data at all."""
    data_bytes = 2 * sr
    header = b"RIFF" + (36 + data_bytes).to_bytes(4, "little") + b"WAVEfmt "
    header += (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    header += sr.to_bytes(4, "little") + (2 * sr).to_bytes(4, "little")
    header += (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    return header + b"data" + data_bytes.to_bytes(4, "little")


def _prepare_out_dir(out: Path) -> None:
    """Create `out`, or clear a previous demo dataset there; refuse any other non-empty folder."""
    if out.exists() and any(out.iterdir()):
        readme = out / "README.txt"
        if not (readme.is_file() and readme.read_text().startswith(README_MARKER)):
            raise FileExistsError(f"{out} is not empty and does not hold a demo dataset")
        shutil.rmtree(out / "audio", ignore_errors=True)
        for name in ("vggsound.csv", "classes.txt", "README.txt"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _write_broken_files(out: Path, rng: np.random.Generator, bad: dict[str, ClipPlan]) -> None:
    """The files behind the broken rows: valid audio where only the row is wrong, junk otherwise."""
    for reason in ("unknown_label", "unknown_split"):
        plan = bad[reason]
        noise = 0.1 * colored_noise(rng, int(plan.seconds * plan.sample_rate), 1.0)
        write_audio(out / plan.path, noise[:, None], plan.sample_rate, plan.fmt)
    contents = {"corrupt_file": rng.bytes(4096), "empty_file": b"",
                "truncated_file": _truncated_wav(16000)}
    for reason, content in contents.items():
        (out / bad[reason].path).parent.mkdir(parents=True, exist_ok=True)
        (out / bad[reason].path).write_bytes(content)


def _broken_notes(bad: dict[str, ClipPlan], duplicated: ClipPlan, malformed: list[list[str]]
                  ) -> list[str]:
    """One README line per broken file or row: where it is and why the builder must skip it."""
    def row(plan: ClipPlan) -> str:
        return ",".join(plan.row)

    return [
        f"{bad['corrupt_file'].path}: corrupt_file, 4096 random bytes with a .wav name",
        f"{bad['empty_file'].path}: empty_file, 0 bytes",
        f"{bad['truncated_file'].path}: truncated_file, a WAV header announcing 1 s of audio "
        "and no sample data after it (decodes to 0 samples)",
        f"row {row(bad['missing_file'])}: missing_file, its audio file does not exist",
        f"row {row(bad['unknown_label'])}: unknown_label, not in classes.txt (the file is valid)",
        f"row {row(bad['unknown_split'])}: unknown_split, neither train nor test (the file is "
        "valid)",
        f"row {row(duplicated)}: duplicate_row, the same row twice; the first one counts",
        f"row {','.join(malformed[0])}: malformed_row, 3 fields instead of 4",
        f"row {','.join(malformed[1])}: malformed_row, start_seconds is not an integer",
    ]


def _readme(summary: DemoSummary, broken_notes: list[str]) -> str:
    return "\n".join([
        f"{README_MARKER}, generated by asf_jax.datasets.demo (seed {summary.seed}).",
        "",
        f"{len(CLASS_NAMES)} procedurally synthesised classes (see classes.txt): "
        + ", ".join(CLASS_NAMES) + ".",
        "Every clip has background noise (between pink and brown, with distant babble) at a",
        "random 5-25 dB SNR and is peak-normalised to a random level <= 0.9. The layout is",
        "VGG-Sound's manual download: vggsound.csv (youtube_id,start_seconds,label,split; no",
        "header) and audio files named <youtube_id>_<start_seconds:06d>.<ext> in nested folders",
        "under audio/.",
        "",
        str(summary),
        "",
        "Also on purpose: one all-zero (digital silence) clip in the train split, one video id",
        "used twice with two start times, and clips shorter than one network input (5.119 s).",
        "M4A clips were written with ffmpeg." if summary.m4a_written else
        "M4A clips were skipped (ffmpeg was not found on PATH); those clips are WAV instead.",
        "",
        "Broken on purpose (the builder must skip and count each):",
        *[f"  - {note}" for note in broken_notes],
        "",
    ])


def make_demo_dataset(out_dir: str | Path, *, seed: int = 0, clips_per_class: int = 30,
                      test_per_class: int = 6) -> DemoSummary:
    """Write the demo dataset to `out_dir` (see the module docstring) and return its summary."""
    if not 0 < test_per_class < clips_per_class:
        raise ValueError(f"need 0 < test_per_class ({test_per_class}) < clips_per_class "
                         f"({clips_per_class})")
    out = Path(out_dir)
    _prepare_out_dir(out)
    rng = np.random.default_rng(seed)
    use_m4a = shutil.which("ffmpeg") is not None
    n_good = clips_per_class * len(CLASS_NAMES)
    ids = youtube_ids(rng, n_good + len(BROKEN_REASONS))
    plans = plan_clips(rng, clips_per_class, test_per_class, ids, use_m4a)
    extra_ids = iter(ids[n_good:])

    def extra(label: str, split: str, fmt: str = "wav", seconds: float = 3.0) -> ClipPlan:
        return ClipPlan(next(extra_ids), 10 * int(rng.integers(0, 30)), label, split, fmt, 16000,
                        1, seconds, AUDIO_FOLDERS[int(rng.integers(3))])

    silent = extra(CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))], "train", seconds=10.0)
    bad = {
        "corrupt_file": extra(CLASS_NAMES[0], "train"),
        "empty_file": extra(CLASS_NAMES[1], "test", "flac"),
        "truncated_file": extra(CLASS_NAMES[2], "train"),
        "missing_file": extra(CLASS_NAMES[3], "test"),
        "unknown_label": extra("kazoo", "train"),
        "unknown_split": extra(CLASS_NAMES[4], "val"),
    }
    duplicated = plans[len(plans) // 2]
    malformed_plan = extra(CLASS_NAMES[5], "test")
    malformed = [malformed_plan.row[:3],
                 [malformed_plan.youtube_id, "n/a", *malformed_plan.row[2:]]]

    for plan, clip_rng in zip(plans, rng.spawn(len(plans)), strict=True):
        audio = synthesise(plan.label, clip_rng, plan.sample_rate, plan.seconds, plan.channels)
        write_audio(out / plan.path, audio, plan.sample_rate, plan.fmt)
    write_audio(out / silent.path, np.zeros((int(silent.seconds * silent.sample_rate), 1)),
                 silent.sample_rate, silent.fmt)
    _write_broken_files(out, rng, bad)

    rows = [p.row for p in [*plans, silent, *bad.values(), duplicated]] + malformed
    rows.sort(key=lambda row: (row[0], row[1]))  # stable: the duplicate follows its original
    write_lists(out, rows, sorted(CLASS_NAMES))

    written = [*plans, silent]
    good = {s: sum(p.split == s for p in plans) for s in ("train", "test")}
    silent_clips = {s: int(silent.split == s) for s in ("train", "test")}
    summary = DemoSummary(
        seed=seed, classes=len(CLASS_NAMES), good_clips=good, silent_clips=silent_clips,
        expected_kept={s: good[s] + silent_clips[s] for s in good},
        broken={r: 2 if r == "malformed_row" else 1 for r in BROKEN_REASONS},
        broken_files={r: bad[r].path for r in ("corrupt_file", "empty_file", "truncated_file")},
        csv_rows=len(rows),
        formats=_count(p.fmt for p in written),
        sample_rates=_count(p.sample_rate for p in written),
        channels=_count(p.channels for p in written),
        short_clips=sum(p.seconds < 5.119 for p in written),
        m4a_written=use_m4a,
    )
    (out / "README.txt").write_text(_readme(summary, _broken_notes(bad, duplicated, malformed)))
    return summary


