"""What every log-mel dataset builder shares: configs, features, parallel build, report, index.

A subclass says only how its manual dir is read (`scan`: class names and clips per split) and
describes itself; building locally over a pool of `extract` workers with a clip cache, or under
Apache Beam, the uncompressed array_record files, the build report and the label index are here.
See `asf_jax.datasets.build` for the command line, and the VGG-Sound builder's docstring for
Beam builds and their limits.
"""

from __future__ import annotations

import abc
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

RECIPES = ("slowfast", "slow")


@dataclasses.dataclass(eq=False)
class LogmelConfig(tfds.core.BuilderConfig):
    """Audio recipe, storage precision and (optionally pinned) class list of one build.

    `class_names=None` (the registered configs) takes the class list from the manual dir at build
    time. A config made on the fly with another name can pin a class list.
    """

    recipe: str = "slowfast"
    float16: bool = False
    class_names: tuple[str, ...] | None = None


def make_config(recipe: str, float16: bool = False) -> LogmelConfig:
    """The registered config of a recipe: named `<recipe>` or `<recipe>_float16`."""
    frames = get_recipe(recipe).num_frames
    return LogmelConfig(
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


class LogmelBuilder(tfds.core.GeneratorBasedBuilder):
    """Log-mel clips (whole-clip log-mel, plus the two reference views outside `train`)."""

    BUILDER_CONFIGS = [make_config(r, f) for f in (False, True) for r in RECIPES]
    DESCRIPTION = "Audio as log-mel spectrograms (time, mel) for the Slow-Fast auditory network."
    HOMEPAGE = ""
    CITATION = ""

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

    @abc.abstractmethod
    def scan(self, root: Path) -> tuple[list[str], manual_dir.Manifest]:
        """(class names in id order, the clips per split) of the manual dir; raises
        `ManualDirError` when the directory as a whole cannot be built from."""

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
            description=f"{self.DESCRIPTION} Metadata: recipe, class_names, report.",
            features=tfds.features.FeaturesDict({
                "logmel": tfds.features.Tensor(shape=(None, mels), dtype=dtype, encoding=encoding,
                                               doc="whole clip, edge padded to one clip"),
                "views": tfds.features.Tensor(shape=(None, frames, mels), dtype=dtype,
                                              encoding=encoding,
                                              doc="the 2 reference test views; train: none"),
                "label": tfds.features.ClassLabel(names=names),
                "youtube_id": tfds.features.Text(doc="the clip's video or recording"),
                "start_seconds": tfds.features.Scalar(dtype=np.int32),
                "duration": tfds.features.Scalar(dtype=np.float32, doc="seconds of audio"),
                "filename": tfds.features.Text(doc="path relative to the manual dir"),
            }),
            supervised_keys=("logmel", "label"),
            homepage=self.HOMEPAGE or None,
            citation=self.CITATION or None,
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
        names, manifest = self.scan(root)
        names = list(self.builder_config.class_names or names)
        if not self.builder_config.class_names:
            self.info.features["label"].names = names
            self.info.metadata["class_names"] = names
        self._report = BuildReport(str(root), manifest.annotation, scan_notes=manifest.notes,
                                   splitting=manifest.splitting)
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
