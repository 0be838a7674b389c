"""Other recordings (GCompris), read from its Qt resource files."""

from __future__ import annotations

import re
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from asf_jax.audio import load_audio
from asf_jax.datasets.real_sounds.clips import SAMPLE_RATE, Clip, finish
from asf_jax.datasets.real_sounds.packages import PreparationError, debian_package, package_version
from asf_jax.datasets.real_sounds.writing import safe_name


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
