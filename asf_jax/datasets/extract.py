"""One clip's features for the dataset: the per-clip work that runs in parallel worker processes.

A worker never raises for bad audio: it returns a `Skip` with the reason, so one broken file cannot
abort a build of 200k clips. Unusual but usable audio is kept and described by notes. With a
`ClipCache` in the task, features saved by an earlier, interrupted build are reused.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import dataclasses
import itertools
import multiprocessing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile
import threadpoolctl

from asf_jax import audio
from asf_jax.datasets.manual_dir import Clip, Skip
from asf_jax.recipe import AudioRecipe

if TYPE_CHECKING:
    from asf_jax.datasets.clip_cache import ClipCache


@dataclasses.dataclass(frozen=True)
class Task:
    """Everything a worker needs for one clip (picklable)."""

    clip: Clip
    label_id: int
    filename: str  # relative to the manual dir
    recipe: AudioRecipe
    float16: bool
    cache: ClipCache | None = None

    @property
    def num_views(self) -> int:
        """Every split but `train` may be evaluated on (test, validation, each fold), so its
        clips carry the reference's two test views; training clips none."""
        return 0 if self.clip.split == "train" else 2


@dataclasses.dataclass(frozen=True)
class Features:
    """What a clip's audio gives: its log-mels, its duration and notes on unusual audio."""

    logmel: np.ndarray  # (time, mel), whole clip, edge padded to one clip
    views: np.ndarray  # (num_views, num_frames, mel)
    duration: float  # seconds
    notes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Extracted:
    """A kept clip: its key, its TFDS example, notes on unusual audio, whether it was cached."""

    key: str
    example: dict[str, Any]
    notes: tuple[str, ...]
    reused: bool = False


@dataclasses.dataclass(frozen=True)
class Header:
    """What the file header says, read cheaply without decoding."""

    sample_rate: int
    channels: int
    frames: int


def _header(path: Path) -> Header | None:
    """The file header; None where soundfile cannot read it (M4A/MP4, or a broken file)."""
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    return Header(info.samplerate, info.channels, info.frames)


def _notes(path: Path, header: Header | None, samples: np.ndarray,
           recipe: AudioRecipe) -> tuple[str, ...]:
    notes = []
    if header is None:
        notes.append(f"decoded with ffmpeg ({path.suffix.lower() or 'no extension'})")
    else:
        if header.sample_rate != recipe.sample_rate:
            notes.append(f"resampled from {header.sample_rate} Hz")
        if header.channels > 1:
            notes.append(f"downmixed from {header.channels} channels")
    if not np.any(samples):
        notes.append("digital silence")
    if len(samples) < recipe.clip_samples:
        notes.append(f"shorter than one clip ({recipe.clip_seconds} s): log-mel edge padded")
    return tuple(notes)


def featurise(task: Task) -> Features | Skip:
    """Read, check and featurise one clip; bad audio comes back as a `Skip`, never an exception."""
    clip, recipe = task.clip, task.recipe

    def skip(reason: str, detail: str) -> Skip:
        return Skip(reason, detail, f"{clip.source} ({task.filename})", clip.split, clip.key)

    if not clip.path.is_file():
        return skip("missing audio file", "the file disappeared after the manual dir was indexed")
    if clip.path.stat().st_size == 0:
        return skip("empty audio file", "0 bytes")
    header = _header(clip.path)
    if header is not None and header.frames == 0:
        return skip("empty audio file", "a valid header but no samples")
    try:
        samples = audio.load_audio(clip.path, recipe.sample_rate)
    except audio.AudioError as error:
        return skip("unreadable audio", error.reason)
    dtype = np.float16 if task.float16 else np.float32
    whole = audio.pad_frames(audio.logmel(samples, recipe), recipe.num_frames)  # (time, mel)
    if task.num_views:  # (2, num_frames, mel): the reference's two test views
        views = audio.logmel_views(samples, recipe.sample_rate, recipe=recipe,
                                   num_views=task.num_views)
    else:
        views = np.zeros((0, recipe.num_frames, recipe.num_mels), np.float32)
    return Features(whole.astype(dtype), views.astype(dtype), len(samples) / recipe.sample_rate,
                    _notes(clip.path, header, samples, recipe))


def extract(task: Task) -> Extracted | Skip:
    """One clip's TFDS example: from the cache when it holds the clip, else from its audio."""
    features = task.cache.load(task) if task.cache is not None else None
    reused = features is not None
    if features is None:
        features = featurise(task)
        if isinstance(features, Skip):
            return features
        if task.cache is not None:
            task.cache.save(task, features)
    example = {
        "logmel": features.logmel,
        "views": features.views,
        "label": task.label_id,
        "youtube_id": task.clip.youtube_id,
        "start_seconds": task.clip.start_seconds,
        "duration": features.duration,
        "filename": task.filename,
    }
    return Extracted(task.clip.key, example, features.notes, reused)


def _start_worker() -> None:
    """One BLAS thread per worker (the workers already use every core); freed memory kept."""
    threadpoolctl.threadpool_limits(1)
    _keep_freed_memory()


def _keep_freed_memory() -> None:
    """Stops glibc from returning freed memory to the system after every clip.

    By default it unmaps large blocks and trims the heap as soon as they are freed, so a worker's
    few-MB temporaries (signal, FFT blocks) page-fault back in for every clip: workers spent 50%
    more CPU per clip than the same extraction in a long-lived process. A no-op without glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    libc.mallopt(_M_MMAP_THRESHOLD, 1 << 25)  # 32 MB; also ends glibc's own adjustments


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


def worker_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """Worker processes for `parallel_map`, forked from a server that has imported their modules.

    Not forked from this process: it holds threads (TFDS's, perhaps JAX's) that a fork would copy
    half-locked. Not spawned: each spawned worker would import NumPy, SciPy and soundfile anew.
    Like spawned ones, the workers re-run the parent's main module (multiprocessing's rule): keep
    its imports light (`asf_jax.datasets.build` imports TFDS only when it builds).
    An executor, not a `multiprocessing.Pool`: the pool's worker-handler thread spun while each
    result (0.5 MB) waited in the pipe, a third of the writing process's CPU; and a worker that
    dies (out of memory, a crashing decoder) fails the build instead of hanging it.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return concurrent.futures.ProcessPoolExecutor(workers, context, _start_worker)


def parallel_map(tasks: Iterable[Task], pool: concurrent.futures.ProcessPoolExecutor | None,
                 in_flight: int) -> Iterator[Extracted | Skip]:
    """`extract` over the tasks in completion order, `in_flight` tasks submitted at a time;
    without a pool, in this process."""
    if pool is None:
        yield from map(extract, tasks)
        return
    tasks = iter(tasks)
    pending = {pool.submit(extract, task) for task in itertools.islice(tasks, in_flight)}
    while pending:
        done, pending = concurrent.futures.wait(
            pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            yield future.result()
        pending |= {pool.submit(extract, task) for task in itertools.islice(tasks, len(done))}
