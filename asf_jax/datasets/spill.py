"""TFDS's shuffler spilling to disk with plain files instead of TensorFlow.

A local build sorts each split with `tensorflow_datasets.core.shuffle.Shuffler`, which keeps up to
`MAX_MEM_BUFFER_SIZE` (1 GB, about 2,000 float32 10-s clips) in memory and then writes 1,000 bucket
files through `tf.io.gfile`: without TensorFlow a VGG-Sound build failed there ("No module named
'tensorflow'"). `install()` swaps in `FileBucket`, the same file format written with `open()`, so
that the records, their order and the label index are those a TensorFlow install would give
(tests/test_dataset_build.py builds with a lowered `MAX_MEM_BUFFER_SIZE` and compares). Local
paths only, as array_record needs anyway.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator
from typing import BinaryIO

from etils import epath
from tensorflow_datasets.core import shuffle
from tensorflow_datasets.core.utils import type_utils


class FileBucket(shuffle._Bucket):  # noqa: SLF001 - the one class TFDS lets us not replace
    """`shuffle._Bucket` (key | size | data records) on local files, without TensorFlow."""

    def __init__(self, path: epath.Path):
        super().__init__(path)
        self._fobj: BinaryIO | None = None

    def add(self, key: type_utils.Key, data: bytes) -> None:
        if self._fobj is None:
            self._fobj = self._open_for_writing()
        self._fobj.write(shuffle._hkey_to_bytes(key))  # noqa: SLF001
        self._fobj.write(struct.pack("=Q", len(data)))  # as TFDS: standard size, native order
        self._fobj.write(data)
        self._length += 1
        self._size += len(data)

    def _open_for_writing(self) -> BinaryIO:
        path = epath.Path(self._path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return open(path, "wb")  # noqa: SIM115 - closed by flush(), like TFDS's GFile
        except OSError as error:
            if error.errno != errno.EMFILE:  # 1,000 buckets open at once: raise the limit once
                raise
            shuffle._increase_open_files_limit()  # noqa: SLF001
            return open(path, "wb")  # noqa: SIM115

    def read_values(self) -> Iterator[tuple[int, bytes]]:
        self.flush()
        path = epath.Path(self._path)
        if not path.exists():  # a bucket no key hashed to
            return
        with open(path, "rb") as file:
            while key := file.read(shuffle.HKEY_SIZE_BYTES):
                (size,) = struct.unpack("=Q", file.read(8))
                yield shuffle._read_hkey(key), file.read(size)  # noqa: SLF001

    def flush(self) -> None:
        if self._fobj is not None:
            self._fobj.close()
            self._fobj = None

    def del_file(self) -> None:
        epath.Path(self._path).unlink(missing_ok=True)


def install() -> None:
    """Makes every TFDS shuffler in this process spill through `FileBucket`."""
    shuffle._Bucket = FileBucket  # noqa: SLF001
