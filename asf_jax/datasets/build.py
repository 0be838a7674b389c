"""Build VGG-Sound log-mels to array_record without TensorFlow, in parallel over all cores.

    python -m asf_jax.datasets.build --manual_dir ~/vggsound --data_dir ~/tensorflow_datasets \
        [--config slowfast|slow] [--float16] [--workers N] [--overwrite] [--keep_cache|--no_cache]
        [--beam_pipeline_options runner=DirectRunner,...]

A build killed hard (SIGKILL, out of memory, a preempted VM) can be rerun with the same command: it
removes the `incomplete.*` folder TFDS left behind (as large as the dataset) and reuses the
features of every clip finished before the kill, from `<data_dir>/vggsound/<config>/clip_cache`
(see `clip_cache`). That folder is removed once the build succeeds, unless --keep_cache; with
--no_cache none is written (it needs as much disk as the dataset while the build runs). Only one
build of a config runs at a time: a second one fails at once instead of writing to the same
folder. Builds run on Linux and macOS.

`--beam_pipeline_options` runs the build as an Apache Beam pipeline instead (`pip install
asf_jax[beam]`; see the docstring of `vggsound_dataset_builder` for a cluster); Beam builds keep
no clip cache.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from asf_jax.datasets import manual_dir
from asf_jax.datasets.clip_cache import ClipCache

if TYPE_CHECKING:
    from asf_jax.datasets.vggsound.vggsound_dataset_builder import Builder

CACHE_FOLDER = "clip_cache"
LOCK_FILE = ".build.lock"
_INCOMPLETE = "incomplete.*"  # TFDS's working folder, renamed to the version folder when done


class BuildInProgressError(RuntimeError):
    """Another process is building the same config into the same data dir."""


@contextlib.contextmanager
def exclusive_build(config_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on the config folder; the OS drops it however the process ends."""
    config_dir.mkdir(parents=True, exist_ok=True)
    with open(config_dir / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgressError(
                f"another build of {config_dir.name} is running into {config_dir.parent.parent} "
                f"(it holds {config_dir / LOCK_FILE}); wait for it or stop it") from None
        yield


def remove_stale_folders(config_dir: Path) -> list[Path]:
    """Deletes the `incomplete.*` folders of killed builds (call with the config's lock held)."""
    stale = sorted(path for path in config_dir.glob(_INCOMPLETE) if path.is_dir())
    for path in stale:
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        logging.warning("removing %s (%.2f GB), left by an interrupted build", path, size / 1e9)
        shutil.rmtree(path)
    return stale


def build(manual: str, data_dir: str, config: str = "slowfast", float16: bool = False,
          workers: int | None = None, overwrite: bool = False, cache: bool = True,
          keep_cache: bool = False, beam_pipeline_options: str | None = None) -> Builder:
    """Builds (or reuses) one config and returns its builder; raises ManualDirError early.

    `cache`: save each clip's features while building and reuse those of an interrupted build;
    `keep_cache`: keep them after success (e.g. to rebuild after changing only the class list).
    `beam_pipeline_options` ("key=value,..." as for `tfds build`, e.g. "runner=DirectRunner")
    makes it a Beam build, which keeps no cache.
    """
    # Imported here, not above: the build's worker processes re-run the main module, which is
    # this one for `python -m asf_jax.datasets.build`, and need nothing from TFDS.
    import tensorflow_datasets as tfds

    from asf_jax.datasets.vggsound.vggsound_dataset_builder import Builder

    manual_dir.check_manual_dir(manual)
    config_name = f"{config}_float16" if float16 else config
    config_dir = Path(data_dir).expanduser() / Builder.name / config_name
    beam_options = None
    if beam_pipeline_options is not None:
        cache = False
        beam = tfds.core.lazy_imports.apache_beam
        beam_options = beam.options.pipeline_options.PipelineOptions(
            [f"--{option}" for option in beam_pipeline_options.split(",") if option])
    with exclusive_build(config_dir):
        remove_stale_folders(config_dir)
        clip_cache = ClipCache(config_dir / CACHE_FOLDER, str(Builder.VERSION)) if cache else None
        builder = Builder(data_dir=data_dir, config=config_name, file_format="array_record",
                          workers=workers, cache=clip_cache)
        mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
                else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual, download_mode=mode, beam_options=beam_options))
        if clip_cache is not None and not keep_cache and builder.report is not None:
            clip_cache.remove()  # after a build that ran: a kept cache outlives "already built"
    return builder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manual_dir", required=True, help="CSV list(s) and audio files")
    parser.add_argument("--data_dir", required=True, help="TFDS data dir to write to")
    parser.add_argument("--config", default="slowfast", choices=["slowfast", "slow"])
    parser.add_argument("--float16", action="store_true", help="store log-mels as float16")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="feature extraction processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset")
    caching = parser.add_mutually_exclusive_group()
    caching.add_argument("--keep_cache", action="store_true",
                         help=f"keep <data_dir>/vggsound/<config>/{CACHE_FOLDER} (every clip's "
                              "features) after a successful build")
    caching.add_argument("--no_cache", action="store_true",
                         help="do not save clips' features while building (saves disk; a killed "
                              "build then restarts from scratch)")
    parser.add_argument("--beam_pipeline_options", metavar="KEY=VALUE,...",
                        help="build with Apache Beam, e.g. runner=DirectRunner (needs "
                             "`pip install asf_jax[beam]`)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        builder = build(args.manual_dir, args.data_dir, args.config, args.float16, args.workers,
                        args.overwrite, cache=not args.no_cache, keep_cache=args.keep_cache,
                        beam_pipeline_options=args.beam_pipeline_options)
    except (manual_dir.ManualDirError, BuildInProgressError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    splits = ", ".join(f"{name} {info.num_examples}" for name, info in builder.info.splits.items())
    print(f"dataset: {builder.data_path} ({splits})")
    if builder.report is None:
        print("already built; pass --overwrite to rebuild")
        return 0
    kept = sum(builder.report.kept.values())
    print(builder.report.summary())
    workers = "Beam" if args.beam_pipeline_options is not None else f"{args.workers} workers"
    print(f"{seconds:.1f} s, {kept / seconds:.1f} clips/s with {workers}; "
          f"report: {builder.data_path}/build_report.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
