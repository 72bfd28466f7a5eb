"""Problems: every input record that was skipped or doubtful becomes one :class:`Problem`.

A run never crashes on a bad record: the layer that meets it records a problem (naming the resource, the
field and what was expected) and carries on. ``problems.csv`` is the list of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["skipped", "warning"]

PROBLEM_COLUMNS = ("severity", "resource_type", "resource_id", "patient_id", "file", "line", "field", "reason")


@dataclass(frozen=True, slots=True)
class Problem:
    """One skipped or doubtful input record.

    ``severity`` is ``skipped`` when the record (or the fact it carried) was not used, ``warning`` when it
    was used but something about it is doubtful (e.g. an ulcer item missing, taken as no ulcer).
    ``file`` and ``line`` (1-based; for Bundles the entry index) are filled in by the source when known.
    """

    resource_type: str
    resource_id: str | None
    field: str
    reason: str
    severity: Severity = "skipped"
    patient_id: str | None = None
    file: str | None = None
    line: int | None = None

    def located(self, file: str | None, line: int | None) -> Problem:
        """The same problem with its place in the input filled in (existing values are kept)."""
        return Problem(
            self.resource_type,
            self.resource_id,
            self.field,
            self.reason,
            self.severity,
            self.patient_id,
            self.file if self.file is not None else file,
            self.line if self.line is not None else line,
        )

    def as_row(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in PROBLEM_COLUMNS}
