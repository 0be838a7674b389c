"""Every record's label, stored at build time, so filtering a split by class reads no clip.

TFDS writes a split's examples sorted by the md5 of their key salted with the split name (its
shuffle); `labels_in_record_order` reproduces that order from the keys the builder yielded, and
the labels in that order go into the dataset metadata. Reading maps a split slice ("train[:10%]")
to that array through TFDS's own file instructions. Because the order comes from TFDS internals,
`split_labels` checks a sample of records against the index and scans the split if they differ.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

METADATA_KEY = "label_index"
SAMPLE_SIZE = 16


def labels_in_record_order(split_name: str, labels_by_key: Mapping[str, int]) -> list[int]:
    """The labels of a whole split, one per record, in the order TFDS stores the records (its
    shuffle: sorted by the key's hash salted with the split name)."""
    hasher = tfds.core.hashing.Hasher(split_name)
    return [labels_by_key[key] for key in sorted(labels_by_key, key=hasher.hash_key)]


def stored_labels(info: tfds.core.DatasetInfo, split: str) -> np.ndarray | None:
    """The stored labels of `split` (a TFDS split string, slices and "+" included, as
    "fold1+fold2[:50%]"), or None if absent."""
    parts = [_stored_part_labels(info, part.strip()) for part in split.split("+")]
    if any(labels is None for labels in parts):
        return None
    return np.concatenate(parts)


def _stored_part_labels(info: tfds.core.DatasetInfo, split: str) -> np.ndarray | None:
    """The stored labels of one split, perhaps sliced ("train[:10%]")."""
    index = (info.metadata or {}).get(METADATA_KEY) or {}
    whole_split = split.split("[")[0]
    if whole_split not in index:
        return None
    labels = np.asarray(index[whole_split], np.int64)
    shard_infos = info.splits[whole_split]
    shard_starts = np.concatenate([[0], np.cumsum(shard_infos.shard_lengths)])
    shard_of = {Path(fi.filename).name: i for i, fi in enumerate(shard_infos.file_instructions)}
    parts = []
    for instruction in info.splits[split].file_instructions:
        start = shard_starts[shard_of[Path(instruction.filename).name]] + instruction.skip
        parts.append(labels[start:start + instruction.take])
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def scan_labels(source: Sequence[dict[str, Any]]) -> np.ndarray:
    """Every record's label by reading every record (slow on a large split)."""
    return np.array([source[i]["label"] for i in range(len(source))], np.int64)


def split_labels(info: tfds.core.DatasetInfo, split: str, source: Sequence[dict[str, Any]]
                 ) -> np.ndarray:
    """One label per record of `source`: the stored index after a spot check, else a scan."""
    labels = stored_labels(info, split)
    if labels is None or len(labels) != len(source):
        logging.warning("No label index for split %r (built by an older asf_jax): "
                        "reading all %d records to learn their labels.", split, len(source))
        return scan_labels(source)
    if not len(source):
        return labels
    rng = np.random.default_rng(0)
    sample = np.unique(np.concatenate([[0, len(source) - 1],
                                       rng.integers(0, len(source), SAMPLE_SIZE)]))
    if any(int(source[int(i)]["label"]) != labels[i] for i in sample):
        logging.warning("The label index of split %r disagrees with its records (the TFDS "
                        "record order changed?): reading all %d records.", split, len(source))
        return scan_labels(source)
    return labels
