"""Ordinary least squares as R ``lm`` + ``confint`` (aliased columns dropped as R's QR does), and the
design matrices a site shares for pooling."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from fhir_pts.analyses.stats._arrays import _float_array, _none_if_nan, _r_alpha

#: Relative tolerance below which a design column counts as aliased (R's ``lm`` / ``dqrdc2`` default ``tol``).
_R_LM_QR_TOL: float = 1e-7


@dataclass(frozen=True)
class OlsTerm:
    """One coefficient of an OLS fit: estimate, t-based CI (R ``confint``), two-sided t-test p, standard error.

    Every value is None when the coefficient cannot be estimated (no complete case, or the term is
    aliased — a linear combination of the terms before it, R's ``NA`` coefficient).
    """

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    std_error: float | None


@dataclass(frozen=True)
class OlsResult:
    """An OLS fit as R ``summary(lm(formula, data))`` + ``confint``.

    ``n``: complete cases used; ``r_squared``: R's "Multiple R-squared" (None when it cannot be computed);
    ``terms``: coefficient name → :class:`OlsTerm` (``"intercept"`` first, then the terms in model order);
    ``formula``: the model, R style.
    """

    n: int
    r_squared: float | None
    terms: dict[str, OlsTerm]
    formula: str


_EMPTY_TERM = OlsTerm(None, None, None, None, None)


def _not_aliased(x: npt.NDArray[np.float64]) -> list[int]:
    """Columns kept by R's ``lm`` (LINPACK ``dqrdc2`` with ``tol = 1e-7``): a column is aliased when its part
    orthogonal to the kept columns before it has a norm below ``tol`` times its own norm."""
    kept: list[int] = []
    q = np.empty((x.shape[0], 0))
    for j in range(x.shape[1]):
        col = x[:, j]
        norm = float(np.linalg.norm(col))
        resid = col - q @ (q.T @ col) if q.shape[1] else col
        rnorm = float(np.linalg.norm(resid))
        if norm == 0.0 or rnorm < _R_LM_QR_TOL * norm:
            continue
        kept.append(j)
        q = np.column_stack([q, resid / rnorm])
    return kept


def _fit_ols(
    y: npt.NDArray[np.float64], x: npt.NDArray[np.float64], names: list[str], formula: str, alpha: float
) -> OlsResult:
    from statsmodels.regression.linear_model import OLS  # not statsmodels.api: ~0.3 s of imports less

    alpha = _r_alpha(alpha)
    n = int(y.size)
    kept = _not_aliased(x) if n > 0 else []
    if n == 0 or not kept:
        return OlsResult(n=n, r_squared=None, terms={nm: _EMPTY_TERM for nm in names}, formula=formula)
    # R's summary.lm centres R² exactly when the model has an intercept term (not when a constant is implied).
    has_intercept = "intercept" in names and names.index("intercept") in kept
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = OLS(y, x[:, kept], hasconst=has_intercept).fit()
        params = np.asarray(fit.params)
        if n > len(kept):
            ci = np.asarray(fit.conf_int(alpha=alpha))
            bse = np.asarray(fit.bse)
            pvalues = np.asarray(fit.pvalues)
        else:  # no residual degrees of freedom: R still gives the estimates, with NaN SE, CI and p
            ci = np.full((len(kept), 2), np.nan)
            bse = pvalues = np.full(len(kept), np.nan)
    terms: dict[str, OlsTerm] = {}
    for j, nm in enumerate(names):
        if j in kept:
            k = kept.index(j)
            terms[nm] = OlsTerm(
                estimate=_none_if_nan(params[k]),
                ci_low=_none_if_nan(ci[k, 0]),
                ci_high=_none_if_nan(ci[k, 1]),
                p_value=_none_if_nan(pvalues[k]),
                std_error=_none_if_nan(bse[k]),
            )
        else:
            terms[nm] = _EMPTY_TERM
    if has_intercept and len(kept) == 1:
        r2: float | None = 0.0  # R's summary.lm: 0 for an intercept-only fit
    elif has_intercept and np.ptp(y) == 0:
        # constant outcome: R's mss / (mss + rss) is 0 / 0 (NaN) in exact arithmetic; R prints rounding noise
        # or NaN, statsmodels 1 - 0/0 or -inf. Not defined: None.
        r2 = None
    else:  # R's summary.lm: mss / (mss + rss)
        fitted = np.asarray(fit.fittedvalues, dtype=float)
        mss = float(np.sum((fitted - fitted.mean()) ** 2 if has_intercept else fitted**2))
        rss = float(np.sum(np.asarray(fit.resid, dtype=float) ** 2))
        r2 = mss / (mss + rss) if mss + rss > 0 else None
    return OlsResult(n=n, r_squared=r2, terms=terms, formula=formula)


def ols(data: pd.DataFrame, outcome: str, terms: Sequence[str], alpha: float = 0.05) -> OlsResult:
    """Ordinary least squares with an intercept, as R ``lm(outcome ~ t1 + t2 + ..., data)`` + ``confint``.

    Complete cases only over ``outcome`` and ``terms`` (R's default ``na.action = na.omit``); coefficients,
    standard errors, two-sided t-test p-values and t-based ``1 - alpha`` confidence intervals from statsmodels
    ``OLS``; R² is R's "Multiple R-squared". A term that is a linear combination of the columns before it is
    aliased (all its values None), as R reports NA for it.

    Parameters
    ----------
    data: one row per subject; the columns named are numeric (nullable dtypes and booleans accepted).
    outcome: name of the response column.
    terms: names of the predictor columns, in model order.
    alpha: one minus the confidence level of the intervals (default 0.05: 95 %; R ``confint(level = 1 - alpha)``).

    Returns
    -------
    :class:`OlsResult` with terms ``"intercept"`` and each of ``terms``. When the complete cases are not more
    than the number of estimable coefficients (no residual degrees of freedom), the estimates and R² are still
    R's (an exact fit; R² = 0 for an intercept-only fit) and the CI, p-value and standard error are None (R's
    NaN). No complete case: everything None.
    """
    y, x, names, formula = ols_design(data, outcome, terms)
    return _fit_ols(y, x, names, formula, alpha)


def ols_design(
    data: pd.DataFrame, outcome: str, terms: Sequence[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[str], str]:
    """The complete-case response, design matrix (intercept column first), term names and formula of :func:`ols`.

    What :func:`ols` fits, and what a site shares for pooling (XᵀX, Xᵀy, yᵀy of exactly these).
    """
    terms = list(terms)
    if "intercept" in terms:
        raise ValueError('"intercept" is added automatically and cannot be a term')
    if len(set(terms)) != len(terms) or outcome in terms:
        raise ValueError("terms must be distinct and differ from the outcome")
    missing = [c for c in [outcome, *terms] if c not in data.columns]
    if missing:
        raise ValueError(f"columns not in data: {missing}")
    cols = {
        c: _float_array(data[c].astype("object") if data[c].dtype == "boolean" else data[c], c)
        for c in [outcome, *terms]
    }
    frame = pd.DataFrame(cols).dropna()
    y = frame[outcome].to_numpy(dtype=float)
    x = np.column_stack([np.ones(len(frame)), *(frame[c].to_numpy(dtype=float) for c in terms)])
    formula = f"{outcome} ~ {' + '.join(terms)}" if terms else f"{outcome} ~ 1"
    return y, x.reshape(len(frame), 1 + len(terms)), ["intercept", *terms], formula


def ols_formula(data: pd.DataFrame, formula: str, alpha: float = 0.05) -> OlsResult:
    """OLS from a patsy formula (R-like syntax: ``"gain ~ age + C(sex) + age:segments"``), as R ``lm``.

    Rows with a missing value in any variable of the formula are dropped (complete cases). Term names are
    patsy's (``"C(sex)[T.male]"``, ``"age:segments"``), with ``"Intercept"`` renamed ``"intercept"``; a
    formula with ``- 1`` has no intercept, and then R² is the uncentred one, as in R. Aliasing and the
    too-few-cases rule are those of :func:`ols`. With no complete row at all and a categorical term, patsy
    cannot name the dummy columns: the terms are then named as in the formula (``"C(sex)"``), all None.

    Returns
    -------
    :class:`OlsResult`.
    """
    design = ols_formula_design(data, formula)
    if isinstance(design, OlsResult):
        return design
    y, x, names, _ = design
    return _fit_ols(y, x, names, formula, alpha)


def ols_formula_design(
    data: pd.DataFrame, formula: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[str], str] | OlsResult:
    """The complete-case response, design matrix, term names and formula of :func:`ols_formula`; the
    not-estimable :class:`OlsResult` when patsy cannot code the model (no complete row, categorical terms)."""
    import patsy

    frame = data.copy()
    for c in frame.columns:  # pandas nullable dtypes -> numpy dtypes with NaN, which patsy understands
        if pd.api.types.is_extension_array_dtype(frame[c].dtype):
            if pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype):
                frame[c] = frame[c].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            else:
                frame[c] = frame[c].astype("object").where(frame[c].notna(), None)
    try:
        y_df, x_df = patsy.dmatrices(formula, frame, NA_action="drop", return_type="dataframe")
    except ValueError:
        # patsy cannot code a categorical variable without any complete row; R's lm would fail too ("0 (non-NA)
        # cases"). Report the model as not estimable, with patsy's term names (no level suffixes then).
        used = [c for c in frame.columns if re.search(rf"(?<![\w.]){re.escape(str(c))}(?![\w.])", formula)]
        if used and frame.dropna(subset=used).empty:
            desc = patsy.ModelDesc.from_formula(formula)
            names = ["intercept" if t.name() == "Intercept" else t.name() for t in desc.rhs_termlist]
            return OlsResult(n=0, r_squared=None, terms={nm: _EMPTY_TERM for nm in names}, formula=formula)
        raise
    if y_df.shape[1] != 1:
        raise ValueError(f"formula must have one numeric response: {formula!r}")
    names = ["intercept" if c == "Intercept" else str(c) for c in x_df.columns]
    return y_df.iloc[:, 0].to_numpy(dtype=float), x_df.to_numpy(dtype=float), names, formula
