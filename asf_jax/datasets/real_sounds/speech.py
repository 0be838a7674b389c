"""The speech sets: KTuberling's recorded words and pytest-audioeval's TTS phrases."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from asf_jax.audio import load_audio
from asf_jax.datasets.real_sounds.clips import SAMPLE_RATE, Clip, finish
from asf_jax.datasets.real_sounds.packages import debian_package, package_version, pypi_wheel
from asf_jax.datasets.real_sounds.writing import safe_name


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
