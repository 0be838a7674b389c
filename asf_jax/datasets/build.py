"""Build VGG-Sound log-mels to array_record without TensorFlow, in parallel over all cores.

    python -m asf_jax.datasets.build --manual_dir ~/vggsound --data_dir ~/tensorflow_datasets \
        [--config slowfast|slow] [--float16] [--workers N] [--overwrite]
        [--beam_pipeline_options runner=DirectRunner,...]

`--beam_pipeline_options` runs the build as an Apache Beam pipeline instead (`pip install
asf_jax[beam]`; see the docstring of `vggsound_dataset_builder` for a cluster).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import tensorflow_datasets as tfds

from asf_jax.datasets import manual_dir
from asf_jax.datasets.vggsound.vggsound_dataset_builder import Builder


def build(manual: str, data_dir: str, config: str = "slowfast", float16: bool = False,
          workers: int | None = None, overwrite: bool = False,
          beam_pipeline_options: str | None = None) -> Builder:
    """Builds (or reuses) one config and returns its builder; raises ManualDirError early.

    `beam_pipeline_options` ("key=value,..." as for `tfds build`, e.g. "runner=DirectRunner")
    makes it a Beam build.
    """
    manual_dir.check_manual_dir(manual)
    builder = Builder(data_dir=data_dir, config=f"{config}_float16" if float16 else config,
                      file_format="array_record", workers=workers)
    mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    beam_options = None
    if beam_pipeline_options is not None:
        beam = tfds.core.lazy_imports.apache_beam
        beam_options = beam.options.pipeline_options.PipelineOptions(
            [f"--{option}" for option in beam_pipeline_options.split(",") if option])
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual, download_mode=mode, beam_options=beam_options))
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
    parser.add_argument("--beam_pipeline_options", metavar="KEY=VALUE,...",
                        help="build with Apache Beam, e.g. runner=DirectRunner (needs apache-beam)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        builder = build(args.manual_dir, args.data_dir, args.config, args.float16, args.workers,
                        args.overwrite, args.beam_pipeline_options)
    except manual_dir.ManualDirError as error:
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
