"""Compare the tables of two runs (results.csv, cohort.csv) as the doors must agree: same rows, numbers equal to
a relative 1e-12 (summation order may differ with the order resources arrive in), rows of cohort.csv by patient."""

from __future__ import annotations

import csv
import math
from pathlib import Path

RELATIVE = 1e-12


def read_tables(out: Path) -> dict[str, list[dict[str, str]]]:
    """results.csv in file order, cohort.csv sorted by patient_id."""
    results = list(csv.DictReader((out / "results.csv").open()))
    cohort = sorted(csv.DictReader((out / "cohort.csv").open()), key=lambda r: r["patient_id"])
    return {"results": results, "cohort": cohort}


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=RELATIVE, abs_tol=0.0) or (math.isnan(x) and math.isnan(y))


def differences(a: dict[str, list[dict[str, str]]], b: dict[str, list[dict[str, str]]]) -> list[str]:
    """Every cell where the two runs disagree (empty: they agree)."""
    out = []
    for name in sorted(set(a) | set(b)):
        rows_a, rows_b = a.get(name, []), b.get(name, [])
        if len(rows_a) != len(rows_b):
            out.append(f"{name}: {len(rows_a)} rows vs {len(rows_b)}")
            continue
        for i, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=True)):
            if not isinstance(ra, dict):
                if ra != rb:
                    out.append(f"{name}[{i}]: {ra} != {rb}")
                continue
            for key in sorted(set(ra) | set(rb)):
                if not _same(str(ra.get(key, "")), str(rb.get(key, ""))):
                    out.append(f"{name}[{i}].{key}: {ra.get(key)!r} != {rb.get(key)!r}")
    return out
