"""The drums set: Hydrogen kits, the AVL kits and the sound fonts' drum kits."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator
from pathlib import Path

from asf_jax.audio import AudioError, load_audio
from asf_jax.datasets.real_sounds.clips import SAMPLE_RATE, Clip, finish
from asf_jax.datasets.real_sounds.midi import DRUM_BANKS, Bank, Note, render
from asf_jax.datasets.real_sounds.packages import debian_package, package_version
from asf_jax.datasets.real_sounds.writing import safe_name

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
