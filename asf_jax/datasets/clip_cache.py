"""Per-clip features saved while a dataset is built, so that a rerun after a kill reuses them.

TFDS writes a split only when all its clips are done, so a build killed after hours (preempted VM,
out of memory) would start from scratch. The build workers also save each clip's features here, one
`.npz` per clip (read back without pickle), named by the clip key and a hash of everything the
features depend on: the audio file (resolved path, size, modification time), the recipe, the
storage dtype, the number of test views and the dataset version. A changed file or recipe thus
misses the cache instead of reusing stale features. The local build (`asf_jax.datasets.build`)
removes the folder after a successful build unless asked to keep it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from asf_jax.datasets.extract import Features, Task


@dataclasses.dataclass(frozen=True)
class ClipCache:
    """A folder of per-clip features (picklable: it travels to the workers with each task)."""

    directory: Path
    version: str  # the dataset version: features of another version are never reused

    def path(self, task: Task) -> Path:
        """`<clip key>.<hash>.npz` in the cache folder."""
        stat = task.clip.path.stat()
        depends_on = {
            "file": str(task.clip.path.resolve()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns, "recipe": task.recipe.to_dict(),
            "float16": task.float16, "views": task.num_views, "version": self.version,
        }
        digest = hashlib.sha256(json.dumps(depends_on, sort_keys=True).encode()).hexdigest()
        return self.directory / f"{task.clip.key}.{digest[:20]}.npz"

    def load(self, task: Task) -> Features | None:
        """The clip's saved features; None when absent, unreadable or not of the expected shape."""
        try:
            path = self.path(task)
            with np.load(path, allow_pickle=False) as saved:
                features = Features(saved["logmel"], saved["views"], float(saved["duration"]),
                                    tuple(str(note) for note in saved["notes"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None
        recipe = task.recipe
        dtype = np.float16 if task.float16 else np.float32
        expected_views = (task.num_views, recipe.num_frames, recipe.num_mels)
        if (features.logmel.ndim != 2 or features.logmel.shape[0] < recipe.num_frames
                or features.logmel.shape[1] != recipe.num_mels
                or features.views.shape != expected_views
                or features.logmel.dtype != dtype or features.views.dtype != dtype):
            return None
        return features

    def save(self, task: Task, features: Features) -> None:
        """Writes the clip's features; a file appears whole or not at all (written, renamed)."""
        path = self.path(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        with open(partial, "wb") as file:
            np.savez(file, logmel=features.logmel, views=features.views,
                     duration=np.float64(features.duration),
                     notes=np.array(features.notes, dtype=str))
        os.replace(partial, path)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
