"""Factories of hand-built cohort frames for the analysis tests (no FHIR, no cohort building)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fhir_pts.cohort.model import COHORT_COLUMNS, Cohort


def patients_frame(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """A patients frame with every cohort column at its dtype; columns a row does not give are ``<NA>``."""
    names = {c.name for c in COHORT_COLUMNS}
    for row in rows:
        unknown = set(row) - names
        if unknown:
            raise KeyError(f"not cohort columns: {sorted(unknown)}")
    return pd.DataFrame({c.name: pd.array([row.get(c.name) for row in rows], dtype=c.dtype) for c in COHORT_COLUMNS})


def make_cohort(*rows: Mapping[str, Any], **kwargs: Any) -> Cohort:
    """A :class:`Cohort` of the given patient rows (ids ``p1``, ``p2`` … unless given)."""
    rows = tuple({"patient_id": f"p{i + 1}", **row} for i, row in enumerate(rows))
    kwargs.setdefault("period_start", dt.date(2012, 3, 1) if rows else None)
    kwargs.setdefault("period_end", dt.date(2018, 10, 31) if rows else None)
    return Cohort(patients=patients_frame(*rows), **kwargs)


def patency_row(months: float | None, lost: bool | None, prefix: str = "primary_patency") -> dict[str, Any]:
    """The three columns of one patency definition for one patient (days from months, rounded)."""
    return {
        f"{prefix}_months": months,
        f"{prefix}_lost": lost,
        f"{prefix}_days": None if months is None else round(months * 30.4375),
    }
