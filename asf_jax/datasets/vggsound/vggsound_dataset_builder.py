"""VGG-Sound as a TFDS dataset of log-mel clips, built from audio the user downloaded.

Local build, no TensorFlow needed (array_record, parallel over all cores):

    python -m asf_jax.datasets.build --manual_dir ~/vggsound --data_dir ~/tensorflow_datasets

Apache Beam build, no TensorFlow needed either (`pip install 'asf_jax[beam]'`): the same command
with TFDS's Beam pipeline options, on one machine or on a cluster:

    python -m asf_jax.datasets.build --manual_dir ~/vggsound --data_dir ~/tensorflow_datasets \\
        --beam_pipeline_options=runner=DirectRunner,direct_num_workers=8,\\
    direct_running_mode=multi_processing
    python -m asf_jax.datasets.build --manual_dir /mnt/vggsound --data_dir /mnt/tfds \\
        --beam_pipeline_options="runner=DataflowRunner,project=PROJECT,region=REGION,\\
    temp_location=gs://BUCKET/tmp,extra_package=dist/asf_jax-0.1.0-py3-none-any.whl"

A Beam build writes the records, build report and label index of a local build
(tests/test_beam_build.py compares the in-process DirectRunner with a local build; the
multi_processing DirectRunner gave the same files; no cluster runner has been tried). Under
Beam the workers extract the clips (`beam_clips`), TFDS's Beam writer shards the array_record
files, and the launcher reads the workers' per-clip outcomes back into the report. What does not
work:

* `tfds build` (TFDS's command line) imports TensorFlow at start, even for array_record; launch
  with `python -m asf_jax.datasets.build` as above.
* A data dir on a bucket (`gs://...`): array_record writes local files only ("RuntimeError:
  open() failed: No such file or directory; opening gs://...; Failed to create the file
  header"). The manual dir is read with plain file I/O (soundfile, ffmpeg) too, so both must be
  paths that the launcher and every worker see, e.g. a Filestore/NFS or gcsfuse mount; the
  workers get asf_jax as a wheel made with `pip wheel --no-deps -w dist .`.

A local build, unlike a Beam one, sorts each split with TFDS's shuffler, which spills a split of
more than 1 GB of serialized examples (about 2,000 10-s float32 clips) to disk; `spill` makes it
do so with plain files, so that the whole of VGG-Sound builds without TensorFlow too.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
import tqdm
from array_record.python import array_record_module
from etils import epath

from asf_jax.datasets import beam_clips, extract, label_index, manual_dir, spill
from asf_jax.datasets.clip_cache import ClipCache
from asf_jax.datasets.report import REPORT_FILE, BuildReport
from asf_jax.recipe import get_recipe

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
VGG-Sound audio cannot be downloaded by TFDS (YouTube clips). Put in the manual directory:

* the clip list `vggsound.csv` from https://www.robots.ox.ac.uk/~vgg/data/vggsound/ (rows
  `youtube_id,start_seconds,label,split`, no header), or the per-split lists `train.csv` /
  `test.csv` (rows `"<youtube_id>_<start:06d>.mp4",label`). Pickled annotations (`.pkl`) are never
  read: unpickling can execute code.
* the audio, one file per clip named `<youtube_id>_<start_seconds:06d>.<ext>` (wav, flac, ogg,
  mp3, m4a or mp4; M4A/MP4 need ffmpeg), anywhere below the manual directory.
* optionally `classes.txt`, one class name per line in class-id order; without it the 309
  VGG-Sound classes in sorted order are used.

Clips that are missing or unreadable are skipped and listed in `build_report.json`.
"""

_CITATION = """\
@inproceedings{chen2020vggsound,
  title={VGGSound: A Large-scale Audio-Visual Dataset},
  author={Chen, Honglie and Xie, Weidi and Vedaldi, Andrea and Zisserman, Andrew},
  booktitle={ICASSP}, year={2020}}
@inproceedings{kazakos2021slowfast,
  title={Slow-Fast Auditory Streams for Audio Recognition},
  author={Kazakos, Evangelos and Nagrani, Arsha and Zisserman, Andrew and Damen, Dima},
  booktitle={ICASSP}, year={2021}}
"""


@dataclasses.dataclass(eq=False)
class VggsoundConfig(tfds.core.BuilderConfig):
    """Audio recipe, storage precision and (optionally pinned) class list of one build.

    `class_names=None` (the registered configs) takes the class list from the manual dir at build
    time: its `classes.txt`, else the 309 shipped classes. A config made on the fly with another
    name can pin a class list.
    """

    recipe: str = "slowfast"
    float16: bool = False
    class_names: tuple[str, ...] | None = None


def make_config(recipe: str, float16: bool = False) -> VggsoundConfig:
    """The registered config of a recipe: named `<recipe>` or `<recipe>_float16`."""
    frames = get_recipe(recipe).num_frames
    return VggsoundConfig(
        name=f"{recipe}_float16" if float16 else recipe, recipe=recipe, float16=float16,
        description=f"{recipe} recipe ({frames} frames per 5.119 s clip), stored as "
                    f"{'float16' if float16 else 'float32'}")


class BuildMetadata(tfds.core.MetadataDict):
    """Metadata that also writes the build report as `build_report.json` next to the data."""

    def save_metadata(self, data_dir: epath.PathLike) -> None:
        super().save_metadata(data_dir)
        report = json.dumps(self.get("report"), indent=1, ensure_ascii=False)
        (epath.Path(data_dir) / REPORT_FILE).write_text(report)


class UncompressedArrayRecordWriter(tfds.core.writer.ExampleWriter):
    """array_record files without compression (TFDS's own writer compresses each record with zstd).

    Log-mels hardly compress (zstd saved 7-10%), but compressing cost the build's one writing
    process 0.5 ms per float32 10-s clip, and decompressing made reading a float16 10-s clip for
    training 4x slower (186 instead of 45 us).
    """

    OPTIONS = "group_size:1,uncompressed"  # one record per chunk: random access reads one record

    def write(self, path: epath.PathLike, examples: Iterable[tuple[Any, bytes]]) -> None:
        writer = array_record_module.ArrayRecordWriter(os.fspath(path), self.OPTIONS)
        for _, serialized in examples:
            writer.write(serialized)
        writer.close()


class Builder(tfds.core.GeneratorBasedBuilder):
    """VGG-Sound log-mel clips (whole-clip log-mel, plus the two reference views for test)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Log-mels of the Slow-Fast VGG-Sound recipe, with a build report."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [make_config(r, f) for f in (False, True) for r in ("slowfast", "slow")]

    def __init__(self, *, workers: int | None = None, cache: ClipCache | None = None,
                 **kwargs: Any):
        """`workers`: feature extraction processes (default: all cores; 1 runs in-process).

        `cache`: where clips' features are saved as they are made and reused from (local builds).
        """
        self._workers = workers or os.cpu_count() or 1
        self._cache = cache
        self._use_beam = False
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._report: BuildReport | None = None
        self._beam_files: dict[str, beam_clips.BeamFiles] = {}  # split: its files in a Beam build
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        recipe = get_recipe(config.recipe)
        dtype = np.float16 if config.float16 else np.float32
        # Raw bytes: float16 stays float16 (TFDS widens it otherwise), and serialising is ~100x
        # faster than a protobuf float list (that took 175 ms per 10-s clip, all in this process).
        encoding = tfds.features.Encoding.BYTES
        frames, mels = recipe.num_frames, recipe.num_mels
        names = list(config.class_names) if config.class_names else None
        return self.dataset_info_from_configs(
            description="VGG-Sound audio as log-mel spectrograms (time, mel) for the Slow-Fast "
                        "auditory network. Metadata: recipe, class_names, report.",
            features=tfds.features.FeaturesDict({
                "logmel": tfds.features.Tensor(shape=(None, mels), dtype=dtype, encoding=encoding,
                                               doc="whole clip, edge padded to one clip"),
                "views": tfds.features.Tensor(shape=(None, frames, mels), dtype=dtype,
                                              encoding=encoding,
                                              doc="test: the 2 reference views; train: none"),
                "label": tfds.features.ClassLabel(names=names),
                "youtube_id": tfds.features.Text(),
                "start_seconds": tfds.features.Scalar(dtype=np.int32),
                "duration": tfds.features.Scalar(dtype=np.float32, doc="seconds of audio"),
                "filename": tfds.features.Text(doc="path relative to the manual dir"),
            }),
            supervised_keys=("logmel", "label"),
            homepage="https://www.robots.ox.ac.uk/~vgg/data/vggsound/",
            citation=_CITATION,
            metadata=BuildMetadata(recipe=recipe.to_dict(), float16=config.float16,
                                   class_names=names, report=None,
                                   **{label_index.METADATA_KEY: {}}),
        )

    def _generate_splits(self, dl_manager: tfds.download.DownloadManager,
                         download_config: tfds.download.DownloadConfig) -> Any:
        """Notes whether TFDS runs this build under Beam; stops the local workers at the end."""
        self._use_beam = (download_config.beam_runner is not None
                          or download_config.beam_options is not None)
        if not self._use_beam:
            spill.install()  # splits over 1 GB are sorted on disk, without TensorFlow
        try:
            return super()._generate_splits(dl_manager, download_config)
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    def _example_writer(self) -> tfds.core.writer.ExampleWriter:
        """TFDS's hook for custom storage: uncompressed array_record, else TFDS's own writer."""
        if self.info.file_format == tfds.core.FileFormat.ARRAY_RECORD:
            return UncompressedArrayRecordWriter(self.info.file_format)
        return super()._example_writer()

    def _worker_pool(self) -> concurrent.futures.ProcessPoolExecutor | None:
        """One pool for all splits, started on first use (None: work in this process)."""
        if self._pool is None and self._workers > 1:
            self._pool = extract.worker_pool(self._workers)
        return self._pool

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        """Reads and checks the manual dir: every whole-directory problem is raised here."""
        try:
            root = Path(dl_manager.manual_dir)
        except AssertionError as error:  # TFDS's "does not exist or is empty"
            raise manual_dir.ManualDirError(str(error)) from None
        names = list(self.builder_config.class_names or manual_dir.read_class_names(root))
        if not self.builder_config.class_names:
            self.info.features["label"].names = names
            self.info.metadata["class_names"] = names
        manifest = manual_dir.scan(root, names)
        self._report = BuildReport(str(root), manifest.annotation, scan_notes=manifest.notes)
        for skip in manifest.skipped:
            self._report.skip(skip)
        self.info.metadata["report"] = self._report.to_dict()
        label_ids = {name: i for i, name in enumerate(names)}
        return {
            split: self._generate_examples(split, [
                extract.Task(clip, label_ids[clip.label], clip.path.relative_to(root).as_posix(),
                             get_recipe(self.builder_config.recipe), self.builder_config.float16,
                             self._cache)
                for clip in clips])
            for split, clips in manifest.clips.items() if clips
        }

    def _generate_examples(self, split: str, tasks: list[extract.Task]) -> Any:
        if self._use_beam:
            self._beam_files[split] = beam_clips.BeamFiles.next_to(Path(self.data_path), split)
            return beam_clips.extract_clips(tasks, self._beam_files[split])
        return self._generate_locally(split, tasks)

    def _generate_locally(self, split: str, tasks: list[extract.Task]
                          ) -> Iterator[tuple[str, dict[str, Any]]]:
        results = extract.parallel_map(tasks, self._worker_pool(), in_flight=2 * self._workers)
        labels_by_key = {}
        for result in tqdm.tqdm(results, total=len(tasks), desc=f"{split} log-mels", unit="clip",
                                smoothing=0.05):
            if isinstance(result, manual_dir.Skip):
                self._report.skip(result)
            else:
                self._report.keep(split, result.example["filename"], result.notes, result.reused)
                labels_by_key[result.key] = result.example["label"]
                yield result.key, result.example
        self.info.metadata["report"] = self._report.to_dict()
        self.info.metadata[label_index.METADATA_KEY][split] = (
            label_index.labels_in_record_order(split, labels_by_key))

    def _process_pipeline_result(self, pipeline_result: Any) -> None:
        """Fills the report and the label index from the outcome lines of the Beam workers."""
        del pipeline_result  # the outcomes come back in files (see `beam_clips`)
        for split, files in self._beam_files.items():
            labels_by_key = {}
            for outcome in beam_clips.read_outcomes(files):
                if isinstance(outcome, manual_dir.Skip):
                    self._report.skip(outcome)
                else:
                    self._report.keep(split, outcome.filename, outcome.notes)
                    labels_by_key[outcome.key] = outcome.label
            self.info.metadata[label_index.METADATA_KEY][split] = (
                label_index.labels_in_record_order(split, labels_by_key))
        self.info.metadata["report"] = self._report.to_dict()

    @property
    def report(self) -> BuildReport | None:
        """The report of the build this builder ran (None before `download_and_prepare`)."""
        return self._report
