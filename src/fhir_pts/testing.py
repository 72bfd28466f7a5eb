"""Factories for tests of fhir-pts and of its plugins: a patients frame, or a :class:`Cohort`, from rows.

An analysis reads ``cohort.patients``, one row per patient with the columns of
:func:`~fhir_pts.cohort.model.cohort_columns` at their pandas nullable dtypes. A test states only the cells it is
about; everything else is ``<NA>``, as in a cohort built from FHIR data::

    from fhir_pts.testing import cohort_from_rows

    cohort = cohort_from_rows([{"age": 52, "sex": "female"}, {"age": None}])
    assert len(cohort) == 2  # patients p1 and p2; every other column <NA>

A plugin that adds an instrument passes ``instruments=`` so that the frame has that instrument's columns too
(``docs/plugins.md``, "Testing your plugin").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from fhir_pts.cohort.model import Cohort, cohort_columns
from fhir_pts.instruments import Instrument
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS

__all__ = ["cohort_from_rows", "patients_frame"]


def patients_frame(
    rows: Iterable[Mapping[str, Any]] = (), *, instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS
) -> pd.DataFrame:
    """A patients frame, one row per mapping, with every cohort column (in order, at its dtype).

    A column a row does not give is ``<NA>``; ``None`` (or NaN) is ``<NA>`` too. A row without ``patient_id`` is
    patient ``p1``, ``p2``, … by its position (1-based). A key that names no column of
    ``cohort_columns(instruments)`` raises :class:`KeyError` (a misspelt column would otherwise be a silently
    missing value).
    """
    columns = cohort_columns(instruments)
    names = {c.name for c in columns}
    rows = [{"patient_id": f"p{i}", **row} for i, row in enumerate(rows, start=1)]
    for position, row in enumerate(rows, start=1):
        unknown = sorted(set(row) - names)
        if unknown:
            raise KeyError(f"row {position} ({row['patient_id']}): not cohort columns: {unknown}")
    return pd.DataFrame({c.name: pd.array([row.get(c.name) for row in rows], dtype=c.dtype) for c in columns})


def cohort_from_rows(
    rows: Iterable[Mapping[str, Any]] = (), *, instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS, **fields: Any
) -> Cohort:
    """A :class:`Cohort` whose patients are :func:`patients_frame` of ``rows``, scored with ``instruments``.

    ``fields`` are the other :class:`Cohort` fields (``problems``, ``period_start``, ``period_end``, ``flow``,
    ``windows``, ...); left out, they are the dataclass defaults (no problems, no period).
    """
    return Cohort(patients=patients_frame(rows, instruments=instruments), instruments=tuple(instruments), **fields)

