"""Command line: `python -m asf_jax.datasets.real_sounds --out DIR`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from asf_jax.datasets import real_sounds
from asf_jax.datasets.real_sounds.drums import collect_drums
from asf_jax.datasets.real_sounds.instruments import collect_instruments
from asf_jax.datasets.real_sounds.other import collect_other
from asf_jax.datasets.real_sounds.packages import PreparationError
from asf_jax.datasets.real_sounds.speech import collect_speech, collect_tts_speech
from asf_jax.datasets.real_sounds.writing import SetSpec, write_set

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
        prog="python -m asf_jax.datasets.real_sounds",
        description=real_sounds.__doc__.split("\n\n")[0],
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


def prepare(args: argparse.Namespace) -> None:
    """Collects and writes each chosen set in turn."""
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


def main(argv: Sequence[str] | None = None) -> None:
    """Prepares the sets; a failed tool or download ends with its message, not a traceback."""
    try:
        prepare(parse_args(argv))
    except PreparationError as error:
        sys.exit(f"error: {error}")
