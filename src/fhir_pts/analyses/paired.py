"""Estimates of a paired difference with their confidence intervals, as R gives them.

- :func:`hodges_lehmann`: the (pseudo)median of ``baseline − followup`` and its CI, exactly R's
  ``wilcox.test(baseline, followup, paired = TRUE, conf.int = TRUE)`` (the estimate and interval that go with
  the signed-rank test of :func:`fhir_pts.analyses.stats.wilcoxon_signed_rank`);
- :func:`mean_difference`: the mean difference and its t-based CI, R's ``t.test(baseline, followup,
  paired = TRUE)``.

Checked against R 4.2.2 in ``tests/analyses/reference/hodges_lehmann.R`` (exact and asymptotic cases).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps
from scipy.optimize import brentq

from fhir_pts.analyses.stats._arrays import _r_alpha

__all__ = ["DifferenceEstimate", "hodges_lehmann", "mean_difference", "qsignrank"]

_DBL_EPSILON = 2.220446049250313e-16


@dataclass(frozen=True)
class DifferenceEstimate:
    """An estimate of ``baseline − followup`` with its CI (None where R gives NA/NaN); ``conf_level`` as achieved.

    ``method`` names the R computation (``exact`` / ``asymptotic`` for Hodges–Lehmann, ``t`` for the mean).
    """

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    conf_level: float | None
    method: str


def _differences(baseline: Sequence[float] | npt.ArrayLike, followup: Sequence[float] | npt.ArrayLike) -> np.ndarray:
    x = np.asarray(baseline, dtype=float)
    y = np.asarray(followup, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"baseline ({x.size}) and followup ({y.size}) differ in length")
    d = x - y
    return d[~np.isnan(d)]


def qsignrank(p: float, n: int) -> int:
    """R ``qsignrank(p, n)`` for ``p ≤ 0.5``: the smallest ``q`` with P(V ≤ q) ≥ p, V the signed-rank statistic
    of ``n`` differences (with R's ``10 * DBL_EPSILON`` fuzz)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):  # number of subsets of {1..n} with each sum
        counts[k:] = counts[k:] + counts[: len(counts) - k].copy()
    cumulative = np.cumsum(counts) * math.exp(-n * math.log(2.0))
    return int(np.searchsorted(cumulative, p - 10 * _DBL_EPSILON, side="left"))


def _w(x: np.ndarray, d: float, correct: bool) -> float:
    """R's ``W(d)``: the standardised signed-rank statistic of ``x − d`` (zeros dropped, tie-corrected)."""
    xd = x - d
    xd = xd[xd != 0]
    nx = xd.size
    if nx == 0:
        return math.nan
    ranks = sps.rankdata(np.abs(xd))
    zd = float(ranks[xd > 0].sum()) - nx * (nx + 1) / 4.0
    _, ties = np.unique(ranks, return_counts=True)
    sigma = math.sqrt(nx * (nx + 1) * (2 * nx + 1) / 24.0 - float((ties**3 - ties).sum()) / 48.0)
    if sigma == 0:
        return math.nan
    correction = math.copysign(0.5, zd) if correct and zd != 0 else 0.0
    return (zd - correction) / sigma


def hodges_lehmann(
    baseline: Sequence[float] | npt.ArrayLike, followup: Sequence[float] | npt.ArrayLike, alpha: float = 0.05
) -> DifferenceEstimate:
    """The Hodges–Lehmann estimate of the median of ``baseline − followup`` and its CI, as R's
    ``wilcox.test(baseline, followup, paired = TRUE, conf.int = TRUE)`` (R 4.0–4.5, ``correct = TRUE``).

    Pairs with a missing value and zero differences are dropped (as R). With fewer than 50 differences, no
    ties and no zero: the median of the Walsh averages and the exact interval between the ``qsignrank``-th
    smallest and largest Walsh averages. Otherwise the asymptotic interval: the shifts ``d`` at which the
    continuity-corrected normal statistic of ``x − d`` equals the normal quantiles (R's ``uniroot``, here
    solved to 1e-12 where R stops at 1e-4), and the estimate where the uncorrected statistic is 0. When the
    interval cannot reach the ``1 - alpha`` level (default 95 %) R widens it; ``conf_level`` is the level achieved.
    """
    level = 1.0 - _r_alpha(alpha)  # R's conf.level
    x0 = _differences(baseline, followup)
    zeroes = bool(np.any(x0 == 0))
    x = x0[x0 != 0]
    n = int(x.size)
    if n == 0:
        return DifferenceEstimate(None, None, None, None, "none")
    _, tie_sizes = np.unique(sps.rankdata(np.abs(x)), return_counts=True)
    if n < 50 and not np.any(tie_sizes > 1) and not zeroes:
        i, j = np.triu_indices(n)
        walsh = np.sort((x[i] + x[j]) / 2.0)
        qu = max(qsignrank((1.0 - level) / 2.0, n), 1)
        ql = n * (n + 1) // 2 - qu
        return DifferenceEstimate(float(np.median(walsh)), float(walsh[qu - 1]), float(walsh[ql]), level, "exact")
    lo, hi = float(x.min()), float(x.max())
    w_lo, w_hi = _w(x, lo, True), _w(x, hi, True)
    if not (math.isfinite(w_lo) and math.isfinite(w_hi)):
        return DifferenceEstimate((lo + hi) / 2.0, None, None, None, "asymptotic")
    alpha = 1.0 - level
    while alpha < 1.0 and (w_lo - sps.norm.isf(alpha / 2.0) < 0 or w_hi + sps.norm.isf(alpha / 2.0) > 0):
        alpha *= 2.0
    conf = 1.0 - min(1.0, alpha) if (alpha >= 1.0 or 1.0 - level < alpha * 0.75) else level
    if alpha < 1.0:
        z = float(sps.norm.isf(alpha / 2.0))
        low = brentq(lambda d: _w(x, d, True) - z, lo, hi, xtol=1e-12)
        high = brentq(lambda d: _w(x, d, True) + z, lo, hi, xtol=1e-12)
    else:
        low = high = float(np.median(x))
    estimate = brentq(lambda d: _w(x, d, False), lo, hi, xtol=1e-12) if lo < hi else lo
    return DifferenceEstimate(float(estimate), float(low), float(high), conf, "asymptotic")


def mean_difference(
    baseline: Sequence[float] | npt.ArrayLike, followup: Sequence[float] | npt.ArrayLike, alpha: float = 0.05
) -> DifferenceEstimate:
    """The mean of ``baseline − followup`` and its ``1 - alpha`` (95 %) t-based CI, as R's ``t.test(baseline,
    followup, paired = TRUE)`` (None for the CI with fewer than 2 pairs or no spread, where R stops or gives NaN)."""
    level = 1.0 - _r_alpha(alpha)  # R's conf.level
    d = _differences(baseline, followup)
    n = int(d.size)
    if n == 0:
        return DifferenceEstimate(None, None, None, None, "t")
    mean = float(d.mean())
    if n < 2:
        return DifferenceEstimate(mean, None, None, None, "t")
    se = float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        return DifferenceEstimate(mean, None, None, None, "t")
    half = float(sps.t.isf((1.0 - level) / 2.0, n - 1)) * se
    return DifferenceEstimate(mean, mean - half, mean + half, level, "t")
