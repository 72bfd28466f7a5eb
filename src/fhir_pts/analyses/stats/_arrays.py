"""Array conversions shared by the statistics: numbers, event flags, NaN as ``None``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def _float_array(values: Any, name: str) -> npt.NDArray[np.float64]:
    """``values`` as a 1-D float array; ``None`` / ``pd.NA`` / NaN become NaN."""
    if isinstance(values, pd.Series | pd.Index) or hasattr(values, "to_numpy"):
        series = pd.Series(values)
    else:
        series = pd.Series(list(values), dtype="object")
    try:
        out = pd.to_numeric(series, errors="raise").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not numeric ({exc})") from exc
    return np.asarray(out, dtype=float).reshape(-1)


def _bool_array(values: Any, name: str) -> npt.NDArray[np.bool_]:
    """``values`` as a 1-D bool array; missing values are an error (an event status cannot be guessed)."""
    series = pd.Series(list(values) if not hasattr(values, "to_numpy") else values, dtype="object")
    if series.isna().any():
        raise ValueError(f"{name}: missing values (the event status of every patient must be known)")
    out = []
    for v in series:
        if isinstance(v, bool | np.bool_ | int | np.integer | float | np.floating) and v in (0, 1):
            out.append(bool(v))
        else:
            raise ValueError(f"{name}: {v!r} is not a boolean (True = event, False = censored)")
    return np.asarray(out, dtype=bool)


def _r_alpha(alpha: float) -> float:
    """The significance level R works with for ``alpha``: R's functions take ``conf.level`` and use
    ``1 - conf.level`` (for 0.95: 0.050000000000000044, not 0.05), which moves a Clopper–Pearson bound by one
    unit in the last place; going through ``1 - alpha`` gives R's figures bit for bit.

    ``alpha`` above 0.5 (an interval below 50 %) is refused: it is where a confidence level lands when passed
    in the place of the former ``level`` argument (``clopper_pearson(x, n, 0.95)``), which would otherwise
    give a 5 % interval without a word."""
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if alpha > 0.5:
        raise ValueError(
            f"alpha is one minus the confidence level (0.05 for 95 %), got {alpha}: a confidence level? "
            f"(the former level={alpha} is alpha={1.0 - alpha:.6g})"
        )
    return 1.0 - (1.0 - alpha)


def _none_if_nan(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x
