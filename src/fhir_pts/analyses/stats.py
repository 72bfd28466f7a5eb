"""Statistics used by the analyses, each reproducing one R function exactly.

Every function here is pure (numbers in, numbers out) and returns ``None`` for "cannot be computed" instead of
raising or returning NaN. The reference for every figure is R (``stats`` and ``survival``); which R call each
function reproduces, and how the edge cases are handled, is documented in ``docs/statistics.md`` and checked by
``tests/analyses/test_stats.py`` against hand-computed values and a committed R fixture.

The computations themselves come from lifelines (Kaplan–Meier), statsmodels (Clopper–Pearson, OLS) and scipy
(exact signed-rank distribution); this module adds what those libraries do differently from R: R's edge-case
conventions for the log-log confidence interval, R's survival-quantile (median) rule, and R's choice between
the exact and the continuity-corrected normal Wilcoxon test.

Units: survival times are whatever the caller passes (the analyses pass months from day 0 = the index
procedure); nothing here converts units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from fhir_pts.analyses.result import CurvePoint

__all__ = [
    "KaplanMeierEstimate",
    "OlsResult",
    "OlsTerm",
    "WilcoxonResult",
    "clopper_pearson",
    "kaplan_meier",
    "ols",
    "ols_design",
    "ols_formula",
    "ols_formula_design",
    "quartiles",
    "reverse_km_median",
    "wilcoxon_signed_rank",
]

#: R's tolerance when ``survival`` compares a survival estimate with 0.5 (``sqrt(.Machine$double.eps)``).
_R_SURVFIT_TOL: float = math.sqrt(np.finfo(float).eps)

#: Relative tolerance below which a design column counts as aliased (R's ``lm`` / ``dqrdc2`` default ``tol``).
_R_LM_QR_TOL: float = 1e-7


# ---------------------------------------------------------------------------------------------------- helpers


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


def _none_if_nan(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


# ------------------------------------------------------------------------------------------------ descriptive


def quartiles(values: Sequence[float] | npt.ArrayLike) -> tuple[float | None, float | None, float | None]:
    """First quartile, median and third quartile, as numpy's default (``linear``) = R ``quantile(type = 7)``.

    Parameters
    ----------
    values: the observations; ``None``, ``pd.NA`` and NaN are dropped.

    Returns
    -------
    ``(q1, median, q3)``; ``(None, None, None)`` when no value is left.
    """
    arr = _float_array(values, "values")
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return None, None, None
    q1, med, q3 = np.quantile(arr, [0.25, 0.5, 0.75], method="linear")
    return float(q1), float(med), float(q3)


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Exact (Clopper–Pearson) confidence interval of a binomial proportion, as R ``binom.test(x, n)$conf.int``.

    The bounds are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the beta distributions
    ``Beta(x, n - x + 1)`` and ``Beta(x + 1, n - x)`` (statsmodels ``proportion_confint(method="beta")``),
    with R's edges: the lower bound is exactly 0 when ``x = 0`` and the upper bound exactly 1 when ``x = n``.

    Parameters
    ----------
    successes: number of successes ``x`` (0 ≤ x ≤ n).
    trials: number of trials ``n``.
    level: confidence level (default 0.95).

    Returns
    -------
    ``(ci_low, ci_high)`` as proportions in [0, 1]; ``(None, None)`` when ``trials == 0``.
    """
    from statsmodels.stats.proportion import proportion_confint

    x, n = int(successes), int(trials)
    if x != successes or n != trials:
        raise ValueError("successes and trials must be whole numbers")
    if n < 0 or x < 0 or x > n:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n == 0:
        return None, None
    low, high = proportion_confint(x, n, alpha=1.0 - level, method="beta")
    low = 0.0 if x == 0 else float(low)
    high = 1.0 if x == n else float(high)
    return low, high


# ----------------------------------------------------------------------------------------------- Kaplan–Meier


def _r_survfit_median(times: npt.NDArray[np.float64], surv: npt.NDArray[np.float64]) -> float | None:
    """The median R prints for a ``survfit`` (``summary(fit)$table["median"]``, ``survival:::survmean``).

    ``times`` are all recorded times of the curve (events and censorings), ``surv`` the estimate at each.
    Among the times with S(t) < 0.5 + sqrt(eps), the first one, ``t1``; if S(t1) equals 0.5 (within
    sqrt(eps)) and the curve drops below it later, the midpoint of ``t1`` and the first time it does.
    None (R's NA) when S never reaches 0.5.
    """
    tol = _R_SURVFIT_TOL
    keep = ~np.isnan(surv) & (surv < 0.5 + tol)
    if not keep.any():
        return None
    x, y = times[keep], surv[keep]
    if abs(y[0] - 0.5) < tol and np.any(y < y[0]):
        return float((x[0] + x[int(np.argmax(y < y[0]))]) / 2)
    return float(x[0])


@dataclass(frozen=True, eq=False)
class KaplanMeierEstimate:
    """A Kaplan–Meier estimate with its 95 % (``level``) log-log confidence band, as R ``survfit``.

    Built by :func:`kaplan_meier`. Times are in the caller's unit (the analyses: months from day 0, the index
    procedure); ``lost`` = True is the event, False a censoring at that time.

    Attributes
    ----------
    n: number of subjects.
    events: number of events.
    level: confidence level of the band.
    times: the distinct recorded times (events and censorings), ascending — R's ``fit$time``.
    survival: the estimate S(t) just after each recorded time (events at t included) — R's ``fit$surv``.
    ci_low, ci_high: log-log (Kalbfleisch–Prentice, "exponential Greenwood") bounds at each recorded time;
        NaN where R gives NA, i.e. where S(t) is 1 or 0 (the log-log transform is undefined there).
    n_at_risk: subjects with time ≥ t at each recorded time — R's ``fit$n.risk``.
    n_events: events at each recorded time — R's ``fit$n.event``.
    """

    n: int
    events: int
    level: float
    times: npt.NDArray[np.float64]
    survival: npt.NDArray[np.float64]
    ci_low: npt.NDArray[np.float64]
    ci_high: npt.NDArray[np.float64]
    n_at_risk: npt.NDArray[np.int64]
    n_events: npt.NDArray[np.int64]
    _durations: npt.NDArray[np.float64] = field(repr=False)

    def at(self, t: float) -> tuple[float, float | None, float | None] | None:
        """The step value at time ``t``, as R ``summary(fit, times = t)``: ``(estimate, ci_low, ci_high)``.

        The value at the last recorded time ≤ ``t`` (right-continuous: events at exactly ``t`` count).
        Before the first recorded time: ``(1.0, 1.0, 1.0)``, as R's ``summary`` reports its start row. A CI
        bound is None where R gives NA (S = 1 or S = 0 at a recorded time). Returns None when ``t`` is beyond
        the largest recorded time (last event or censoring) or when there are no subjects — the curve is not
        extended past the last follow-up.
        """
        t = float(t)
        if math.isnan(t) or t < 0:
            raise ValueError(f"t must be a time >= 0, got {t}")
        if self.n == 0 or t > self.times[-1]:
            return None
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        if i < 0:
            return 1.0, 1.0, 1.0
        return float(self.survival[i]), _none_if_nan(self.ci_low[i]), _none_if_nan(self.ci_high[i])

    def at_risk(self, t: float) -> int:
        """Number at risk at time ``t``: subjects whose time is ≥ ``t`` (R ``summary(fit, times = t)$n.risk``)."""
        return int(np.count_nonzero(self._durations >= float(t)))

    def curve(self) -> list[CurvePoint]:
        """The step curve: one point at time 0 and one at each distinct recorded time (if 0 is recorded, once).

        Each point is R ``summary(fit, times = t)`` at that time: the estimate after the events at ``t``, the
        log-log CI (None where R gives NA; at time 0 before any recorded time ``1.0, 1.0``) and the number at
        risk just before ``t`` (time ≥ ``t``). Empty when there are no subjects.
        """
        if self.n == 0:
            return []
        points: list[CurvePoint] = []
        if self.times[0] > 0:
            points.append(CurvePoint(time_months=0.0, estimate=1.0, ci_low=1.0, ci_high=1.0, at_risk=self.n))
        for i, t in enumerate(self.times):
            points.append(
                CurvePoint(
                    time_months=float(t),
                    estimate=float(self.survival[i]),
                    ci_low=_none_if_nan(self.ci_low[i]),
                    ci_high=_none_if_nan(self.ci_high[i]),
                    at_risk=int(self.n_at_risk[i]),
                )
            )
        return points

    def median(self) -> float | None:
        """Median time, as R prints it for the fit (``print(fit)``, ``summary(fit)$table["median"]``).

        The first recorded time with S(t) ≤ 0.5 (R: S < 0.5 + sqrt(eps)); when S equals 0.5 there (within
        sqrt(eps)), the midpoint between that time and the next time the curve drops below 0.5 — or that time
        itself if the curve never drops again (there R's ``quantile(fit, 0.5)`` would instead take the
        midpoint with the last recorded time; see docs/statistics.md). None when S never reaches 0.5 ("not
        reached") or there are no subjects.
        """
        if self.n == 0:
            return None
        return _r_survfit_median(self.times, self.survival)


def kaplan_meier(
    durations: Sequence[float] | npt.ArrayLike, lost: Sequence[bool] | npt.ArrayLike, level: float = 0.95
) -> KaplanMeierEstimate:
    """Kaplan–Meier estimate with a log-log confidence band, as R ``survfit(Surv(t, e) ~ 1, conf.type = "log-log")``.

    The estimate and the interior of the band come from lifelines ``KaplanMeierFitter`` (its default
    "exponential Greenwood" band is the log-log band with Greenwood's variance, the same formula as R). R's
    edges are applied on top: where S(t) = 1 or S(t) = 0 the bounds are undefined (R: NA; here NaN in the
    arrays, None from the accessors) — lifelines would report 1 / 0 there.

    Parameters
    ----------
    durations: time of each subject from the time origin (the analyses: months from day 0, the index
        procedure) to its event or censoring; ≥ 0, no missing values.
    lost: True when the subject had the event at that time (loss of patency), False when censored there.
    level: confidence level (default 0.95).

    Returns
    -------
    A :class:`KaplanMeierEstimate` (``n = 0`` and empty arrays for no subjects).
    """
    from lifelines import KaplanMeierFitter

    t = _float_array(durations, "durations")
    e = _bool_array(lost, "lost")
    if t.shape != e.shape:
        raise ValueError(f"durations ({t.size}) and lost ({e.size}) differ in length")
    if np.isnan(t).any():
        raise ValueError("durations: missing values")
    if (t < 0).any() or np.isinf(t).any():
        raise ValueError("durations must be finite and >= 0")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if t.size == 0:
        empty_f = np.empty(0, dtype=float)
        empty_i = np.empty(0, dtype=np.int64)
        return KaplanMeierEstimate(0, 0, level, empty_f, empty_f, empty_f, empty_f, empty_i, empty_i, t)

    kmf = KaplanMeierFitter(alpha=1.0 - level)
    kmf.fit(t, event_observed=e)
    times = np.unique(t)
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    survival = sf.loc[times].to_numpy(dtype=float)
    low = ci.iloc[:, 0].loc[times].to_numpy(dtype=float).copy()
    high = ci.iloc[:, 1].loc[times].to_numpy(dtype=float).copy()
    undefined = (survival == 0.0) | (survival == 1.0)
    low[undefined] = np.nan
    high[undefined] = np.nan
    table = kmf.event_table.loc[times]
    n_at_risk = (t.size - np.searchsorted(np.sort(t), times, side="left")).astype(np.int64)
    if not np.array_equal(n_at_risk, table["at_risk"].to_numpy(dtype=np.int64)):  # pragma: no cover - sanity
        raise AssertionError("lifelines' number at risk disagrees with the durations")
    return KaplanMeierEstimate(
        n=int(t.size),
        events=int(e.sum()),
        level=level,
        times=times,
        survival=survival,
        ci_low=low,
        ci_high=high,
        n_at_risk=n_at_risk,
        n_events=table["observed"].to_numpy(dtype=np.int64),
        _durations=t,
    )


def reverse_km_median(durations: Sequence[float] | npt.ArrayLike, lost: Sequence[bool] | npt.ArrayLike) -> float | None:
    """Median follow-up by the reverse Kaplan–Meier method (Schemper & Smith 1996).

    The status is flipped (a censoring becomes the event, an event a censoring) and the median of that
    Kaplan–Meier curve is taken with R's rule, i.e. the median R prints for
    ``survfit(Surv(t, 1 - e) ~ 1)`` (see :meth:`KaplanMeierEstimate.median`).

    Parameters
    ----------
    durations: time of each subject from the origin (months from day 0 in the analyses), ≥ 0.
    lost: True for an event (loss of patency), False for a censoring — as for :func:`kaplan_meier`.

    Returns
    -------
    The median potential follow-up in the unit of ``durations``; None when the reverse curve never reaches 0.5
    or there are no subjects.
    """
    e = _bool_array(lost, "lost")
    return kaplan_meier(durations, ~e).median()


# -------------------------------------------------------------------------------------------------- Wilcoxon


@dataclass(frozen=True)
class WilcoxonResult:
    """Result of the paired Wilcoxon signed-rank test, as R ``wilcox.test(x, y, paired = TRUE)``.

    ``v``: R's V, the sum of the ranks (average ranks for ties) of the positive differences ``x - y``;
    ``p_value``: two-sided; ``n_nonzero``: number of non-zero differences the test used; ``exact``: whether
    the exact null distribution was used; ``method``: R's method string.
    """

    v: float | None
    p_value: float | None
    n_nonzero: int
    exact: bool
    method: str


_WILCOXON_EXACT = "Wilcoxon signed rank exact test"
_WILCOXON_NORMAL = "Wilcoxon signed rank test with continuity correction"


def wilcoxon_signed_rank(
    baseline: Sequence[float] | npt.ArrayLike, followup: Sequence[float] | npt.ArrayLike
) -> WilcoxonResult:
    """Two-sided paired Wilcoxon signed-rank test, exactly R ``wilcox.test(baseline, followup, paired = TRUE)``.

    R 4.0–4.5 defaults (``exact = NULL``, ``correct = TRUE``; R ≥ 4.6 computes exact conditional p-values
    with ties instead — see docs/statistics.md): pairs with a missing value are dropped (R's
    ``complete.cases``); differences ``d = baseline - followup`` equal to 0 are dropped; V = sum of the average
    ranks of ``|d|`` over the positive ``d``. With ``n`` non-zero differences:

    - exact p (signed-rank distribution, scipy) when ``n < 50`` and there were neither ties among ``|d|`` nor
      zero differences: ``p = min(1, 2 * min(P(V' <= V), P(V' >= V)))``;
    - otherwise the normal approximation with continuity correction and tie-corrected variance:
      ``z = (V - n(n+1)/4 - sign(V - n(n+1)/4) / 2) / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48)``,
      ``p = 2 * min(Phi(z), 1 - Phi(z))`` (``t``: sizes of the groups of tied ``|d|``).

    Parameters
    ----------
    baseline, followup: paired scores of the same subjects, same length.

    Returns
    -------
    :class:`WilcoxonResult`; ``p_value`` None when no non-zero difference is left, and then ``v`` = 0 (R's V)
    when there were pairs (all differences zero), None when there was no pair (R refuses).
    """
    x = _float_array(baseline, "baseline")
    y = _float_array(followup, "followup")
    if x.shape != y.shape:
        raise ValueError(f"baseline ({x.size}) and followup ({y.size}) differ in length")
    ok = ~(np.isnan(x) | np.isnan(y))
    d = x[ok] - y[ok]
    zeroes = bool(np.any(d == 0))
    d = d[d != 0]
    n = int(d.size)
    if n == 0:  # R: V = 0 (no positive difference) and p = NaN when every difference is zero
        v0 = 0.0 if zeroes else None
        return WilcoxonResult(v=v0, p_value=None, n_nonzero=0, exact=False, method=_WILCOXON_NORMAL)
    ranks = sps.rankdata(np.abs(d), method="average")
    v = float(ranks[d > 0].sum())
    _, tie_sizes = np.unique(ranks, return_counts=True)
    ties = bool(np.any(tie_sizes > 1))
    if n < 50 and not ties and not zeroes:
        # scipy's exact two-sided p: 2 * min(P(T <= t), P(T >= t)), capped at 1, T the signed-rank statistic.
        p = float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="exact").pvalue)
        return WilcoxonResult(v=v, p_value=min(1.0, p), n_nonzero=n, exact=True, method=_WILCOXON_EXACT)
    z = v - n * (n + 1) / 4.0
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(tie_sizes**3 - tie_sizes)) / 48.0)
    correction = math.copysign(0.5, z) if z != 0 else 0.0
    zc = (z - correction) / sigma
    p = 2.0 * min(float(sps.norm.cdf(zc)), float(sps.norm.sf(zc)))
    return WilcoxonResult(v=v, p_value=min(1.0, p), n_nonzero=n, exact=False, method=_WILCOXON_NORMAL)


# ------------------------------------------------------------------------------------------------------- OLS


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
    y: npt.NDArray[np.float64], x: npt.NDArray[np.float64], names: list[str], formula: str, level: float
) -> OlsResult:
    import statsmodels.api as sm

    n = int(y.size)
    kept = _not_aliased(x) if n > 0 else []
    if n == 0 or not kept:
        return OlsResult(n=n, r_squared=None, terms={nm: _EMPTY_TERM for nm in names}, formula=formula)
    # R's summary.lm centres R² exactly when the model has an intercept term (not when a constant is implied).
    has_intercept = "intercept" in names and names.index("intercept") in kept
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = sm.OLS(y, x[:, kept], hasconst=has_intercept).fit()
        params = np.asarray(fit.params)
        if n > len(kept):
            ci = np.asarray(fit.conf_int(alpha=1.0 - level))
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


def ols(data: pd.DataFrame, outcome: str, terms: Sequence[str], level: float = 0.95) -> OlsResult:
    """Ordinary least squares with an intercept, as R ``lm(outcome ~ t1 + t2 + ..., data)`` + ``confint``.

    Complete cases only over ``outcome`` and ``terms`` (R's default ``na.action = na.omit``); coefficients,
    standard errors, two-sided t-test p-values and t-based ``level`` confidence intervals from statsmodels
    ``OLS``; R² is R's "Multiple R-squared". A term that is a linear combination of the columns before it is
    aliased (all its values None), as R reports NA for it.

    Parameters
    ----------
    data: one row per subject; the columns named are numeric (nullable dtypes and booleans accepted).
    outcome: name of the response column.
    terms: names of the predictor columns, in model order.
    level: confidence level of the intervals (default 0.95).

    Returns
    -------
    :class:`OlsResult` with terms ``"intercept"`` and each of ``terms``. When the complete cases are not more
    than the number of estimable coefficients (no residual degrees of freedom), the estimates and R² are still
    R's (an exact fit; R² = 0 for an intercept-only fit) and the CI, p-value and standard error are None (R's
    NaN). No complete case: everything None.
    """
    y, x, names, formula = ols_design(data, outcome, terms)
    return _fit_ols(y, x, names, formula, level)


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


def ols_formula(data: pd.DataFrame, formula: str, level: float = 0.95) -> OlsResult:
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
    return _fit_ols(y, x, names, formula, level)


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
