"""The build report: what was kept, what was skipped and why, what was unusual.

It is saved with the dataset (metadata and `build_report.json`) so that a reader can tell, without
the manual dir, which clips are missing from the dataset and which ones were resampled, padded, etc.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from asf_jax.datasets.manual_dir import Skip

REPORT_FILE = "build_report.json"
_EXAMPLES_PER_NOTE = 20  # notes can apply to most of VGG-Sound (e.g. 44.1 kHz audio): list a few


@dataclasses.dataclass
class BuildReport:
    """Counts and lists, filled while the dataset is built; `to_dict()` is the stored form."""

    manual_dir: str
    annotation: str
    kept: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped: list[Skip] = dataclasses.field(default_factory=list)
    notes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    noted_examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    scan_notes: list[str] = dataclasses.field(default_factory=list)
    reused: int = 0  # kept clips whose features came from the cache of an interrupted build
    splitting: str = ""  # how clips were assigned to splits, when the annotation does not say

    def keep(self, split: str, filename: str, notes: tuple[str, ...], reused: bool = False
             ) -> None:
        self.kept[split] += 1
        self.reused += reused
        for note in notes:
            self.notes[note] += 1
            examples = self.noted_examples.setdefault(note, [])
            if len(examples) < _EXAMPLES_PER_NOTE:
                examples.append(filename)

    def skip(self, skip: Skip) -> None:
        self.skipped.append(skip)

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(sorted(collections.Counter(s.reason for s in self.skipped).items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "manual_dir": self.manual_dir,
            "annotation": self.annotation,
            "kept": dict(sorted(self.kept.items())),
            "num_kept": sum(self.kept.values()),
            "num_skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason(),
            "skipped": [dataclasses.asdict(s) for s in self.skipped],
            "notes": dict(self.notes.most_common()),
            "noted_examples": self.noted_examples,
            "scan_notes": self.scan_notes,
            "reused_from_cache": self.reused,
            "splitting": self.splitting,
        }

    def summary(self) -> str:
        """A few human-readable lines for the end of a build."""
        kept = ", ".join(f"{split} {n}" for split, n in sorted(self.kept.items())) or "none"
        lines = [f"kept {sum(self.kept.values())} clips ({kept}); skipped {len(self.skipped)}"]
        if self.splitting:
            lines.append(f"  splits: {self.splitting}")
        if self.reused:
            lines.append(f"  features of {self.reused} clips reused from an interrupted build")
        lines += [f"  skipped, {reason}: {n}" for reason, n in self.skipped_by_reason().items()]
        lines += [f"  kept, note: {note}: {n}" for note, n in self.notes.most_common()]
        if self.scan_notes:
            lines.append(f"  {len(self.scan_notes)} clips have several audio files (see report)")
        return "\n".join(lines)
