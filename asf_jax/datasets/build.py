"""Build log-mels of VGG-Sound or your own sounds to array_record without TensorFlow, in parallel.

    python -m asf_jax.datasets.build --manual_dir DIR --data_dir ~/tensorflow_datasets \
        [--name NAME] [--csv FILE [--path_column C] [--label_column C] [--split_column C]
        [--fold_column C]] [--test_fraction 0.2]
        [--config slowfast|slow] [--float16] [--workers N] [--overwrite] [--keep_cache|--no_cache]
        [--beam_pipeline_options runner=DirectRunner,...]

What DIR holds chooses the builder: `vggsound.csv` or `train.csv` / `test.csv` (and no --csv)
build VGG-Sound as `<data_dir>/vggsound`; anything else is your own dataset
(`datasets/custom`), built as `<data_dir>/<name>` (default: DIR's folder name), from the CSV list
given by --csv or from one folder per class (see `custom_dir` for the layouts).

A build killed hard (SIGKILL, out of memory, a preempted VM) can be rerun with the same command: it
removes the `incomplete.*` folder TFDS left behind (as large as the dataset) and reuses the
features of every clip finished before the kill, from `<data_dir>/<name>/<config>/clip_cache`
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

from asf_jax.datasets import custom_dir, manual_dir
from asf_jax.datasets.clip_cache import ClipCache

if TYPE_CHECKING:
    from asf_jax.datasets.logmel_builder import LogmelBuilder

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


def is_vggsound(manual: Path) -> bool:
    """Whether a manual dir holds VGG-Sound's clip list(s), or its pickled annotations (which
    its builder refuses, saying why)."""
    lists = (manual_dir.FULL_LIST, *manual_dir.SPLIT_LISTS.values())
    return (any((manual / name).is_file() for name in lists)
            or any(manual.glob("*.pkl")))


def builder_class(manual: Path, name: str | None, layout: custom_dir.Layout | None
                  ) -> tuple[type[LogmelBuilder], dict[str, object]]:
    """The builder class a manual dir calls for, and its extra arguments."""
    if layout is None and is_vggsound(manual):
        from asf_jax.datasets.vggsound.vggsound_dataset_builder import Builder

        if name not in (None, Builder.name):
            raise manual_dir.ManualDirError(
                f"{manual} holds VGG-Sound's list, which builds as {Builder.name!r}, not "
                f"{name!r}; give --csv to read another list there")
        return Builder, {}
    from asf_jax.datasets.custom import custom_dataset_builder

    try:
        name = custom_dataset_builder.dataset_name(name or manual.resolve().name)
    except ValueError as error:
        raise manual_dir.ManualDirError(f"{error}: pass --name") from None
    return custom_dataset_builder.named(name), {"layout": layout or custom_dir.Layout()}


def build(manual: str, data_dir: str, config: str = "slowfast", float16: bool = False,
          workers: int | None = None, overwrite: bool = False, cache: bool = True,
          keep_cache: bool = False, beam_pipeline_options: str | None = None, *,
          name: str | None = None, layout: custom_dir.Layout | None = None) -> LogmelBuilder:
    """Builds (or reuses) one config and returns its builder; raises ManualDirError early.

    VGG-Sound when the manual dir holds its list and no `layout` is given, else a custom dataset
    named `name` (default: the manual dir's folder name) read by `layout` (default: folders).

    `cache`: save each clip's features while building and reuse those of an interrupted build;
    `keep_cache`: keep them after success (e.g. to rebuild after changing only the class list).
    `beam_pipeline_options` ("key=value,..." as for `tfds build`, e.g. "runner=DirectRunner")
    makes it a Beam build, which keeps no cache.
    """
    # Imported here, not above: the build's worker processes re-run the main module, which is
    # this one for `python -m asf_jax.datasets.build`, and need nothing from TFDS.
    import tensorflow_datasets as tfds

    root = manual_dir.check_manual_dir(manual)
    builder_cls, extra = builder_class(root, name, layout)
    config_name = f"{config}_float16" if float16 else config
    config_dir = Path(data_dir).expanduser() / builder_cls.name / config_name
    beam_options = None
    if beam_pipeline_options is not None:
        cache = False
        beam = tfds.core.lazy_imports.apache_beam
        beam_options = beam.options.pipeline_options.PipelineOptions(
            [f"--{option}" for option in beam_pipeline_options.split(",") if option])
    with exclusive_build(config_dir):
        remove_stale_folders(config_dir)
        clip_cache = (ClipCache(config_dir / CACHE_FOLDER, str(builder_cls.VERSION)) if cache
                      else None)
        builder = builder_cls(data_dir=data_dir, config=config_name, file_format="array_record",
                              workers=workers, cache=clip_cache, **extra)
        mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
                else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual, download_mode=mode, beam_options=beam_options))
        if clip_cache is not None and not keep_cache and builder.report is not None:
            clip_cache.remove()  # after a build that ran: a kept cache outlives "already built"
    return builder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manual_dir", required=True, help="audio files, and their list(s)")
    parser.add_argument("--data_dir", required=True, help="TFDS data dir to write to")
    parser.add_argument("--name", help="your dataset's name in the data dir (default: the manual "
                        "dir's folder name; VGG-Sound is always 'vggsound')")
    parser.add_argument("--csv", help="a CSV list with a header row (path, label and optionally "
                        "split or fold columns), relative to the manual dir or absolute; "
                        "without it: VGG-Sound's list, else one folder per class")
    for role, usual in custom_dir.COLUMN_NAMES.items():
        parser.add_argument(f"--{role}_column", help=f"the list's {role} column (default: the "
                            f"first of {', '.join(usual)} in the header)")
    parser.add_argument("--test_fraction", type=float, default=0.2,
                        help="of each class, to test, when neither split nor fold is given")
    parser.add_argument("--config", default="slowfast", choices=["slowfast", "slow"])
    parser.add_argument("--float16", action="store_true", help="store log-mels as float16")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="feature extraction processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset")
    caching = parser.add_mutually_exclusive_group()
    caching.add_argument("--keep_cache", action="store_true",
                         help=f"keep <data_dir>/<name>/<config>/{CACHE_FOLDER} (every clip's "
                              "features) after a successful build")
    caching.add_argument("--no_cache", action="store_true",
                         help="do not save clips' features while building (saves disk; a killed "
                              "build then restarts from scratch)")
    parser.add_argument("--beam_pipeline_options", metavar="KEY=VALUE,...",
                        help="build with Apache Beam, e.g. runner=DirectRunner (needs "
                             "`pip install asf_jax[beam]`)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    columns = {f"{role}_column": getattr(args, f"{role}_column")
               for role in custom_dir.COLUMN_NAMES}
    try:
        layout = None
        if args.csv or any(columns.values()) or not is_vggsound(Path(args.manual_dir).expanduser()):
            if any(columns.values()) and not args.csv:
                raise manual_dir.ManualDirError("--*_column flags need --csv")
            layout = custom_dir.Layout(args.csv, test_fraction=args.test_fraction, **columns)
        builder = build(args.manual_dir, args.data_dir, args.config, args.float16, args.workers,
                        args.overwrite, cache=not args.no_cache, keep_cache=args.keep_cache,
                        beam_pipeline_options=args.beam_pipeline_options, name=args.name,
                        layout=layout)
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
