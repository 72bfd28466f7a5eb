"""Small helpers shared by the built-in analyses (not part of the plugin API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_pts.analyses.api import Statistic

if TYPE_CHECKING:  # imported where used: listing the analyses must not load numpy / pandas
    import numpy as np
    import pandas as pd

#: Fixed times (months) at which Kaplan–Meier estimates and numbers at risk are reported.
KM_TIMES_MONTHS: tuple[int, ...] = (6, 12, 24, 36)


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """The column ``name`` of a cohort frame; a clear error when the frame lacks it."""
    if name not in frame.columns:
        raise KeyError(f"cohort has no column {name!r} (see fhir_pts.cohort.model.COHORT_COLUMNS)")
    return frame[name]


def as_float(series: pd.Series) -> np.ndarray:
    """A nullable numeric column as a float array with NaN for missing values."""
    import numpy as np
    import pandas as pd

    if series.dtype == "boolean" or pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("Float64")
    return pd.to_numeric(series, errors="raise").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def count(name: str, value: int, n: int | None = None, unit: str | None = None) -> Statistic:
    """A count statistic (``n`` defaults to nothing)."""
    return Statistic(name=name, value=float(value), n=n, unit=unit)


def excluded_note(n_excluded: int, total: int, why: str) -> list[str]:
    """A note saying how many patients were left out and why (nothing when none was)."""
    if n_excluded == 0:
        return []
    return [f"{n_excluded} of {total} patients excluded: {why}"]
