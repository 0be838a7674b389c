"""The instruments set: single notes of General-MIDI instruments from sound fonts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asf_jax.datasets.real_sounds.clips import Clip, is_silent, normalise
from asf_jax.datasets.real_sounds.midi import BANKS, Note, render

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
