"""docs/cohort.md documents every cohort.csv column, with the dtype and description of the code."""

from __future__ import annotations

from pathlib import Path

from fhir_pts.cohort.model import COHORT_COLUMNS

DOC = Path(__file__).resolve().parents[2] / "docs" / "cohort.md"


def test_every_column_is_documented_in_order() -> None:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    documented = [line.split("|")[1].strip().strip("`") for line in rows]
    names = [c.name for c in COHORT_COLUMNS]
    assert [n for n in documented if n in names] == names
    for column in COHORT_COLUMNS:
        assert f"| `{column.name}` | {column.dtype} | {column.description} |" in rows
