"""The per-clip work of a Beam build: examples for TFDS's writer, one line per clip for the report.

The launcher writes the split's tasks as JSON lines next to the data and the pipeline reads them
from there: held in a `beam.Create`, the ~200k tasks of VGG-Sound made a 19 MB pipeline, at the
size limit of a Dataflow job. A local build fills the build report and the label index as its
clips come back; Beam workers cannot reach the launcher's report, so each also writes what it
learnt of its clip (kept: key, label, filename, notes; skipped: the `Skip`) as one JSON line, read
back by the launcher once the pipeline has run (TFDS's Beam writer returns its split sizes the
same way). Files go through Beam's `FileSystems`; apache_beam is imported only by a Beam build.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from asf_jax.datasets import extract
from asf_jax.datasets.manual_dir import Clip, Skip
from asf_jax.recipe import AudioRecipe


@dataclasses.dataclass(frozen=True)
class Kept:
    """What the report and the label index need of a kept clip (its example went to the writer)."""

    key: str
    label: int
    filename: str
    notes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class BeamFiles:
    """The two files of one split's Beam build: its tasks (in) and its outcomes (out)."""

    tasks: str
    outcomes: str

    @classmethod
    def next_to(cls, data_dir: Path, split: str) -> BeamFiles:
        return cls(str(data_dir / f"{split}-tasks.jsonl"), str(data_dir / f"{split}-clips.jsonl"))


def _filesystems() -> Any:
    return tfds.core.lazy_imports.apache_beam.io.filesystems.FileSystems


def _task_line(index: int, task: extract.Task) -> str:
    clip = {**dataclasses.asdict(task.clip), "path": str(task.clip.path)}
    return json.dumps({"index": index, "clip": clip, "label_id": task.label_id,
                       "filename": task.filename})


def _extract(line: str, recipe: AudioRecipe, float16: bool
             ) -> tuple[int, extract.Extracted | Skip]:
    fields = json.loads(line)
    clip = Clip(**{**fields["clip"], "path": Path(fields["clip"]["path"])})
    task = extract.Task(clip, fields["label_id"], fields["filename"], recipe, float16)
    return fields["index"], extract.extract(task)


def _outcome_line(index: int, result: extract.Extracted | Skip) -> str:
    """One JSON line for the launcher; `index` (the task's position) restores the task order."""
    if isinstance(result, Skip):
        logging.warning("skipped %s: %s: %s", result.source, result.reason, result.detail)
        return json.dumps({"index": index, "skip": dataclasses.asdict(result)})
    kept = Kept(result.key, result.example["label"], result.example["filename"], result.notes)
    return json.dumps({"index": index, "kept": dataclasses.asdict(kept)})


def _example(_: int, result: extract.Extracted | Skip) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(result, extract.Extracted):
        yield result.key, result.example


def extract_clips(tasks: Sequence[extract.Task], files: BeamFiles) -> Any:
    """Writes `files.tasks` now and returns a PTransform from the pipeline root to the kept
    clips' (key, example) pairs that also writes one outcome line per task to `files.outcomes`.

    The tasks of one build share their recipe and precision (the builder config's).
    """
    settings = {(task.recipe, task.float16) for task in tasks}
    if len(settings) != 1:
        raise ValueError(f"the tasks of one split need one recipe and precision, got {settings}")
    ((recipe, float16),) = settings
    beam = tfds.core.lazy_imports.apache_beam
    with _filesystems().create(files.tasks) as out:
        out.writelines(f"{_task_line(i, task)}\n".encode() for i, task in enumerate(tasks))

    @beam.ptransform_fn
    def extract_and_record(root: Any) -> Any:
        results = (root
                   | "ReadTasks" >> beam.io.ReadFromText(files.tasks)
                   | "Spread" >> beam.Reshuffle()
                   | "Extract" >> beam.Map(_extract, recipe, float16))
        _ = (results
             | "Outcomes" >> beam.MapTuple(_outcome_line)
             | "WriteOutcomes" >> beam.io.WriteToText(files.outcomes, shard_name_template=""))
        return results | "Examples" >> beam.FlatMapTuple(_example)

    return extract_and_record()


def read_outcomes(files: BeamFiles) -> list[Kept | Skip]:
    """The outcomes written by the pipeline of `extract_clips`, in task order; deletes both
    files."""
    with _filesystems().open(files.outcomes) as lines:
        records = sorted((json.loads(line) for line in lines), key=lambda r: r["index"])
    _filesystems().delete([files.tasks, files.outcomes])
    return [Skip(**r["skip"]) if "skip" in r
            else Kept(**{**r["kept"], "notes": tuple(r["kept"]["notes"])}) for r in records]
