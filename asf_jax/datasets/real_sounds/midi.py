"""Rendering notes with fluidsynth (SF2/SF3) or timidity (GUS patches).

mido is imported only when a MIDI file is written: it is an extra, not an install dependency."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from asf_jax.audio import load_audio
from asf_jax.datasets.real_sounds.clips import SAMPLE_RATE
from asf_jax.datasets.real_sounds.packages import (
    PreparationError,
    debian_package,
    package_version,
    run,
)


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
