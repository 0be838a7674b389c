"""Frozen settings dataclasses that round-trip through JSON (checkpoints, dataset metadata)."""

from __future__ import annotations

import dataclasses
from typing import Any, Self


class DictSerializable:
    """`to_dict()` / `from_dict()` for a dataclass; unknown fields are an error, not ignored."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**values)
