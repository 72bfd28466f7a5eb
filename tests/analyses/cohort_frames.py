"""Factories of hand-built cohorts for the analysis tests (no FHIR, no cohort building)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from fhir_pts.cohort.model import Cohort
from fhir_pts.testing import cohort_from_rows


def make_cohort(*rows: Mapping[str, Any], **kwargs: Any) -> Cohort:
    """A :class:`Cohort` of the given patient rows (:func:`fhir_pts.testing.cohort_from_rows`: ids ``p1``, ``p2``
    … unless given), over the paper's period when it has patients."""
    kwargs.setdefault("period_start", dt.date(2012, 3, 1) if rows else None)
    kwargs.setdefault("period_end", dt.date(2018, 10, 31) if rows else None)
    return cohort_from_rows(rows, **kwargs)


def patency_row(months: float | None, lost: bool | None, prefix: str = "primary_patency") -> dict[str, Any]:
    """The three columns of one patency definition for one patient (days from months, rounded)."""
    return {
        f"{prefix}_months": months,
        f"{prefix}_lost": lost,
        f"{prefix}_days": None if months is None else round(months * 30.4375),
    }
