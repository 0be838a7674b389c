"""Read PyTorch `.pyth` checkpoints (torch.save zip format) into numpy without torch.

A `.pyth` file is a zip holding `<prefix>/data.pkl` (a pickle of dicts, numbers, strings and
tensors) and one raw record `<prefix>/data/<key>` per tensor storage. Unpickling runs whatever
callables the pickle names, so `_SafeUnpickler.find_class` hands out only the few local stand-ins
below that rebuild tensors as numpy arrays; any other global is refused before it can run.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import zipfile
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np
import yaml

# A pickle (protocol 2) starting with torch's legacy magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class PythError(ValueError):
    """A `.pyth` file that cannot be read; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class UnsafePickleError(PythError):
    """The pickle names a global outside the allow-list (e.g. `os.system`); nothing was run."""

    def __init__(self, path: str | os.PathLike, global_name: str):
        super().__init__(path, f"pickle asks for {global_name!r}, which is not allowed")
        self.global_name = global_name


@dataclasses.dataclass
class PythCheckpoint:
    """What the reference's `save_checkpoint` stores, with every tensor as a numpy array."""

    path: str
    model_state: dict[str, np.ndarray]
    cfg: dict
    cfg_text: str
    epoch: int | None
    optimizer_state: dict | None


class _StorageType(NamedTuple):
    """Stand-in for `torch.<X>Storage`: immutable, so a pickle's BUILD cannot alter it."""

    name: str
    dtype: np.dtype


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> np.ndarray:
    """Stand-in for `torch._utils._rebuild_tensor`: a C-contiguous copy of a strided view."""
    if not (isinstance(storage, np.ndarray) and storage.ndim == 1 and storage.flags.c_contiguous):
        raise ValueError("tensor storage is not a storage record")
    if not (
        isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(v, int) and v >= 0 for v in (storage_offset, *size, *stride))
    ):
        raise ValueError(f"bad tensor geometry offset={storage_offset} size={size} stride={stride}")
    if 0 not in size:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= storage.size:
            raise ValueError(f"tensor of size {size} reaches past its storage of {storage.size}")
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:],
        shape=size,
        strides=tuple(s * storage.itemsize for s in stride),
        writeable=False,
    )
    return np.array(view, dtype=storage.dtype.newbyteorder("="), order="C")


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_grad_hooks_metadata: Any
) -> np.ndarray:
    """Stand-in for `torch._utils._rebuild_tensor_v2`; autograd flags, hooks, metadata dropped."""
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: np.ndarray, *_grad_hooks: Any) -> np.ndarray:
    """Stand-in for `torch._utils._rebuild_parameter`: a Parameter is just its tensor here."""
    return data


_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    # torch.save writes raw (untyped) storages as bytes.
    ("torch", "UntypedStorage"): _StorageType("UntypedStorage", np.dtype(np.uint8)),
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage", np.dtype(np.uint8)),
} | {("torch", k): _StorageType(k, np.dtype(v)) for k, v in _STORAGE_DTYPES.items()}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only `_ALLOWED` globals and reads storages from the zip."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._byteorder = "<" if byteorder == "little" else ">"
        self._storages: dict[str, np.ndarray] = {}  # Tensors that share a storage share its key.

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(self._archive.filename, f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
        ):
            raise ValueError(f"unexpected persistent id {pid!r:.200}")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            record = f"{self._prefix}/data/{key}"
            try:
                raw = self._archive.read(record)
            except KeyError:
                raise ValueError(f"storage record {record!r} is missing") from None
            dtype = storage_type.dtype.newbyteorder(self._byteorder)
            if len(raw) != numel * dtype.itemsize:
                raise ValueError(
                    f"storage record {record!r} has {len(raw)} bytes, expected {numel} "
                    f"{storage_type.name} elements"
                )
            self._storages[key] = np.frombuffer(raw, dtype=dtype)
        return self._storages[key]


def _open_zip(path: str) -> zipfile.ZipFile:
    """Open the zip, telling a missing, truncated, legacy or foreign file apart."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_MAGIC))
        return zipfile.ZipFile(path)
    except OSError as e:
        raise PythError(path, f"cannot open ({e.strerror or e})") from e
    except zipfile.BadZipFile as e:
        if head.startswith(_LEGACY_MAGIC):
            reason = (
                "legacy (pre-1.6, non-zip) torch.save format is unsupported; re-save it with a "
                "recent torch: torch.save(torch.load(f), f)"
            )
        elif head.startswith(b"PK\x03\x04"):
            reason = f"truncated or corrupt zip archive ({e})"
        else:
            reason = "not a PyTorch zip checkpoint"
        raise PythError(path, reason) from e


def _unpickle(path: str, archive: zipfile.ZipFile) -> Any:
    """Find `<prefix>/data.pkl` and unpickle it with the restricted unpickler."""
    pickles = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise PythError(path, f"expected one <prefix>/data.pkl in the zip, found {len(pickles)}")
    prefix = pickles[0].rsplit("/", 1)[0]
    try:
        byteorder = archive.read(f"{prefix}/byteorder").decode().strip()
    except KeyError:
        byteorder = "little"  # What torch assumes for files written before it recorded one.
    if byteorder not in ("little", "big"):
        raise PythError(path, f"unknown byteorder {byteorder!r}")
    try:
        return _SafeUnpickler(archive.read(pickles[0]), archive, prefix, byteorder).load()
    except PythError:
        raise
    except zipfile.BadZipFile as e:
        raise PythError(path, f"corrupt zip archive ({e})") from e
    except Exception as e:  # Any failure of a hostile or damaged pickle is a bad file.
        raise PythError(path, f"malformed checkpoint pickle ({type(e).__name__}: {e})") from e


def read_pyth(path: str | os.PathLike) -> PythCheckpoint:
    """Load a `.pyth` checkpoint; a bare state dict of tensors is taken as `model_state`."""
    path = os.fspath(path)
    with _open_zip(path) as archive:
        obj = _unpickle(path, archive)
    if not isinstance(obj, dict):
        raise PythError(path, f"checkpoint is a {type(obj).__name__}, expected a dict")
    if "model_state" not in obj:
        if not obj or not all(isinstance(v, np.ndarray) for v in obj.values()):
            raise PythError(path, "checkpoint has no 'model_state' and is not a state dict")
        obj = {"model_state": obj}
    model_state = obj["model_state"]
    if not isinstance(model_state, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in model_state.items()
    ):
        raise PythError(path, "'model_state' is not a dict of tensors")
    cfg_text = obj.get("cfg", "")
    if not isinstance(cfg_text, str):
        raise PythError(path, f"'cfg' is a {type(cfg_text).__name__}, expected YAML text")
    try:
        cfg = yaml.safe_load(cfg_text) or {}
    except yaml.YAMLError as e:
        raise PythError(path, f"'cfg' is not valid YAML ({e})") from e
    return PythCheckpoint(
        path=path,
        model_state=dict(model_state),
        cfg=cfg,
        cfg_text=cfg_text,
        epoch=obj.get("epoch"),
        optimizer_state=obj.get("optimizer_state"),
    )
