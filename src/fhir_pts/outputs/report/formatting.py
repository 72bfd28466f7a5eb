"""Numbers as a clinician reads them in a paper (used by the report's context builder and as Jinja2 filters).

Minus signs are typographic (``−``), missing values are ``—``, p-values follow the usual journal style, and a
value that rounds to zero never prints as ``-0.00``.
"""

from __future__ import annotations

import math

import pandas as pd

from fhir_pts.analyses.api import Statistic

NA = "not available"


def is_missing(value: object) -> bool:
    """``None``, ``pd.NA`` and NaN are missing; anything else (including text) is not."""
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _minus(text: str) -> str:
    """Typographic minus; a value that rounded to zero loses its sign (``-0.00`` → ``0.00``)."""
    if text.startswith("-") and not any(c not in "0.-" for c in text):
        text = text[1:]
    return text.replace("-", "−")


def fmt_num(value: float | None, digits: int = 1, *, fixed: bool = False) -> str:
    """A number with ``digits`` decimals, ``.0`` dropped for whole numbers unless ``fixed``; ``—`` when missing."""
    if is_missing(value):
        return "—"
    v = float(value)  # type: ignore[arg-type]
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if not fixed and v == round(v) and abs(v) < 1e15:
        return _minus(f"{round(v)}")
    return _minus(f"{v:.{digits}f}")


def fmt_p(p: float | None) -> str:
    """A p-value as a clinician reads it: ``< 0.0001``, ``0.0004``, ``0.002``, ``0.049``, ``0.43``, ``> 0.99``."""
    if is_missing(p):
        return "—"
    p = float(p)  # type: ignore[arg-type]
    if p < 0.0001:
        return "< 0.0001"
    if p < 0.001:
        return f"{p:.4f}"
    if p < 0.0995:  # three decimals around the usual 0.05 threshold (0.049 is not 0.05)
        return f"{p:.3f}"
    return f"{p:.2f}" if p < 0.995 else "> 0.99"


def fmt_pct(num: float | None, den: float | None) -> str:
    """``num`` of ``den`` in percent with one decimal (``94.7 %``); ``—`` when either is missing or ``den`` is 0."""
    if is_missing(num) or is_missing(den) or not den:
        return "—"
    return f"{100.0 * float(num) / float(den):.1f} %"  # type: ignore[arg-type]


def fmt_ci(s: Statistic | None, digits: int = 1, scale: float = 1.0, *, fixed: bool | None = None) -> str:
    """``low to high`` of a statistic's 95 % CI; the decimals are fixed with ``fixed`` (default: when ``scale``
    is not 1, e.g. 100 for percent)."""
    if s is None or s.ci_low is None or s.ci_high is None:
        return "—"
    fixed = scale != 1.0 if fixed is None else fixed
    return f"{fmt_num(s.ci_low * scale, digits, fixed=fixed)} to {fmt_num(s.ci_high * scale, digits, fixed=fixed)}"


def fmt_percent(fraction: float | None) -> str:
    """A proportion (0–1) as ``87.7 %``; ``—`` when missing."""
    return "—" if is_missing(fraction) else f"{fmt_num(float(fraction) * 100, 1, fixed=True)} %"  # type: ignore[arg-type]


def median_iqr(series: pd.Series, digits: int = 1) -> str:
    """``median (Q1–Q3)`` (R's quantile type 7) of the non-missing values; ``not available`` when none."""
    values = pd.to_numeric(series, errors="coerce").dropna().astype(float)
    if values.empty:
        return NA
    q1, med, q3 = values.quantile([0.25, 0.5, 0.75]).tolist()
    return f"{fmt_num(med, digits)} ({fmt_num(q1, digits)}–{fmt_num(q3, digits)})"


def signed(day: int) -> str:
    """A day offset with a typographic minus (``−90``)."""
    return str(day).replace("-", "−")
