"""Manual directories in VGG-Sound's layout, written from audio made in memory.

The one writer behind the tests' tiny datasets, the benchmark's clips and the demo dataset
(asf_jax.datasets.demo): audio files named `<youtube_id>_<start_seconds:06d>.<ext>`,
`vggsound.csv` (youtube_id,start_seconds,label,split; no header, as the real list) and
`classes.txt` (one class name per line, in class-id order).
"""

from __future__ import annotations

import csv
import dataclasses
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile

from asf_jax.datasets.manual_dir import CLASSES_FILE, FULL_LIST, clip_key

# Container -> (file extension, soundfile format, soundfile subtype); M4A goes through ffmpeg.
FORMATS: dict[str, tuple[str, str | None, str | None]] = {
    "wav": (".wav", "WAV", "PCM_16"),
    "flac": (".flac", "FLAC", "PCM_16"),
    "ogg": (".ogg", "OGG", "VORBIS"),
    "mp3": (".mp3", "MP3", "MPEG_LAYER_III"),
    "m4a": (".m4a", None, None),
}


def audio_path(youtube_id: str, start_seconds: int, fmt: str, folder: str = "") -> str:
    """`[folder/]<youtube_id>_<start_seconds:06d>.<ext>`, relative to the manual dir."""
    name = clip_key(youtube_id, start_seconds) + FORMATS[fmt][0]
    return f"{folder}/{name}" if folder else name


@dataclasses.dataclass(frozen=True)
class SyntheticClip:
    """One row of the list and its audio."""

    youtube_id: str
    start_seconds: int
    label: str
    split: str
    samples: np.ndarray  # (samples,) or (samples, channels), floats in [-1, 1)
    sample_rate: int = 16000
    fmt: str = "wav"  # a key of FORMATS
    folder: str = ""  # where below the manual dir

    @property
    def path(self) -> str:
        """The audio file, relative to the manual dir."""
        return audio_path(self.youtube_id, self.start_seconds, self.fmt, self.folder)

    @property
    def row(self) -> list[str]:
        return [self.youtube_id, str(self.start_seconds), self.label, self.split]


def write_audio(path: Path, samples: np.ndarray, sample_rate: int, fmt: str = "wav") -> None:
    """Writes (samples,) or (samples, channels) audio; M4A (AAC) is encoded by ffmpeg."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt != "m4a":
        _, container, subtype = FORMATS[fmt]
        soundfile.write(str(path), samples, sample_rate, format=container, subtype=subtype)
        return
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    pcm = (np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2")
    command = ["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", str(sample_rate),
               "-ac", str(channels), "-i", "-", "-c:a", "aac", "-b:a", "96k",
               "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", str(path)]
    subprocess.run(command, input=pcm.tobytes(), capture_output=True, check=True)


def write_lists(root: Path, rows: Iterable[Sequence[str]], class_names: Sequence[str]) -> None:
    """`vggsound.csv` with these rows (in this order) and `classes.txt` with these names."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / FULL_LIST, "w", newline="", encoding="utf-8") as file:
        csv.writer(file, lineterminator="\n").writerows(rows)
    (root / CLASSES_FILE).write_text("".join(f"{name}\n" for name in class_names),
                                     encoding="utf-8")


def write_manual_dir(root: Path, clips: Iterable[SyntheticClip], class_names: Sequence[str]
                     ) -> Path:
    """Every clip's audio file, its row in `vggsound.csv`, and `classes.txt`; returns `root`."""
    rows = []
    for clip in clips:
        write_audio(root / clip.path, clip.samples, clip.sample_rate, clip.fmt)
        rows.append(clip.row)
    write_lists(root, rows, class_names)
    return root
