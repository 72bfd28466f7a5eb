"""The CSV outputs: ``results.csv``, ``cohort.csv`` and ``problems.csv`` (contract §4, ``docs/outputs.md``).

Conventions (all three files): UTF-8, comma-separated, ``\\n`` line ends, a header row, RFC 4180 quoting
where needed, an **empty cell** for a missing / not applicable value. Numbers are written at full precision:
integers (and integral floats below 2**53) without a decimal point, other floats as Python's shortest
round-trip ``repr`` (up to 17 significant digits; reading the text back gives the very same double).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fhir_pts.analyses.api import AnalysisOutcome
from fhir_pts.cohort.model import COLUMN_NAMES, Cohort
from fhir_pts.problems import PROBLEM_COLUMNS, Problem

#: Columns of ``results.csv``, in order.
RESULTS_COLUMNS: tuple[str, ...] = ("measure", "statistic", "value", "ci_low", "ci_high", "p_value", "n")

_EXACT_INT_LIMIT = 2.0**53


def format_number(value: Any) -> str:
    """A number as written in the CSV outputs: empty for None / NA / NaN, integers without ``.0``, floats
    at full round-trip precision (``repr``), ``inf`` / ``-inf`` for infinities."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    x = float(value)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < _EXACT_INT_LIMIT:
        return str(int(x))
    return repr(x)


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def results_rows(outcomes: Iterable[AnalysisOutcome]) -> list[dict[str, str]]:
    """The rows of ``results.csv``: one per statistic of each successful analysis, in analysis order.

    A failed analysis has no rows (its error is in its MeasureReport, status ``error``).
    """
    rows: list[dict[str, str]] = []
    for outcome in outcomes:
        if outcome.result is None:
            continue
        for s in outcome.result.statistics:
            rows.append(
                {
                    "measure": outcome.info.id,
                    "statistic": s.name,
                    "value": format_number(s.value),
                    "ci_low": format_number(s.ci_low),
                    "ci_high": format_number(s.ci_high),
                    "p_value": format_number(s.p_value),
                    "n": format_number(s.n),
                }
            )
    return rows


def results_csv_bytes(outcomes: Iterable[AnalysisOutcome]) -> bytes:
    """``results.csv`` as bytes."""
    return _csv_bytes(RESULTS_COLUMNS, ([r[c] for c in RESULTS_COLUMNS] for r in results_rows(outcomes)))


_INTEGER_TEXT = re.compile(r"-?[0-9]+")


def _number_column(cells: Sequence[str]) -> Any:
    """One numeric column of ``results.csv`` typed as ``pandas.read_csv`` types it: int64 when every cell is an
    integer, else float64 (empty: NaN); each number is its text's value (round-trip ``repr``: the exact one)."""
    if cells and all(_INTEGER_TEXT.fullmatch(c) for c in cells):
        return np.array([int(c) for c in cells], dtype=np.int64)
    try:
        return np.array([float(c) if c else math.nan for c in cells], dtype=np.float64)
    except ValueError:  # not a number (never written by an analysis): the text itself
        return np.array([c if c else math.nan for c in cells], dtype=object)


def results_frame(outcomes: Iterable[AnalysisOutcome]) -> pd.DataFrame:
    """``results.csv`` as a DataFrame, without writing and parsing it: the rows of :func:`results_rows`,
    ``measure`` and ``statistic`` as strings, ``n`` as ``Int64``, the numbers as the file's text reads back
    (``repr`` round-trips: the very values written), typed as ``pandas.read_csv`` types the file."""
    rows = results_rows(outcomes)
    data: dict[str, Any] = {}
    for column in RESULTS_COLUMNS:
        cells = [row[column] for row in rows]
        if column in ("measure", "statistic"):
            data[column] = pd.array(cells, dtype="string")
        elif column == "n":
            data[column] = pd.array([int(c) if c else pd.NA for c in cells], dtype="Int64")
        else:
            data[column] = _number_column(cells)
    return pd.DataFrame(data, columns=list(RESULTS_COLUMNS))


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, dt.datetime):  # pd.Timestamp included: a date when it is midnight, else date-time
        return value.date().isoformat() if value.time() == dt.time(0) and value.tzinfo is None else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | float | np.integer | np.floating):
        return format_number(value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _column_cells(series: pd.Series) -> list[str]:
    """One column of the cohort frame as CSV cells (vectorised where the dtype allows it)."""
    dtype = series.dtype
    if isinstance(dtype, pd.BooleanDtype) or pd.api.types.is_bool_dtype(dtype):
        return series.map({True: "true", False: "false"}).astype("object").where(series.notna(), "").tolist()
    if pd.api.types.is_integer_dtype(dtype):
        return series.astype("object").where(series.notna(), None).map(_cell).tolist()
    if isinstance(dtype, pd.StringDtype):
        return series.astype("object").where(series.notna(), "").tolist()
    return [_cell(v) for v in series.astype("object").tolist()]


def cohort_csv_bytes(cohort: Cohort) -> bytes:
    """``cohort.csv`` as bytes: one row per patient, the columns of ``COHORT_COLUMNS`` in order (then any
    extra column of the frame), ISO dates, ``true`` / ``false`` booleans, empty cells for missing values."""
    frame = cohort.patients
    columns = [c for c in COLUMN_NAMES if c in frame.columns] + [c for c in frame.columns if c not in COLUMN_NAMES]
    cells = [_column_cells(frame[c]) for c in columns]
    return _csv_bytes([str(c) for c in columns], zip(*cells, strict=True) if cells else [])


def problems_csv_bytes(problems: Iterable[Problem]) -> bytes:
    """``problems.csv`` as bytes: the columns of ``PROBLEM_COLUMNS``, one row per problem, in order."""
    rows = ([_cell(p.as_row()[c]) for c in PROBLEM_COLUMNS] for p in problems)
    return _csv_bytes(PROBLEM_COLUMNS, rows)
