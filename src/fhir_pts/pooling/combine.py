"""The figures of the union of several sites, from their aggregates (:mod:`fhir_pts.analyses.aggregates`) merged
by :func:`fhir_pts.pooling.aggregates.merge`.

:func:`pooled_statistics` recomputes a measure's statistics with the functions a single-site run uses —
``stats.kaplan_meier`` on the merged KM table, ``stats.clopper_pearson`` on the summed counts, ``stats.quartiles``
on the merged distributions, OLS from the summed XᵀX / Xᵀy / yᵀy with ``lm``'s conventions
(:mod:`fhir_pts.pooling.ols`) — so that every *exact* statistic equals that of a run on the union. Each pooled
statistic says whether it is exact, and why not (a site suppressed a cell, did not share its distribution, the
statistic needs the patients' ranks across sites …).

Added statistics (new names, not in a single-site run):

- ``wilcoxon_stratified``: the site-stratified Wilcoxon signed-rank test (van Elteren weights 1/(n_k + 1),
  normal approximation with each site's tie correction; value = z, p two-sided), exact from the aggregates;
- ``<mean statistic>_q`` / ``<mean statistic>_i2``: Cochran's Q (p of its χ² test) and I² (percent) of the
  sites' means of a variable (e.g. ``gain_mean_i2``), with inverse-variance weights (variance s²/n per site).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from scipy import stats as sps

from fhir_pts.analyses import aggregates as agg
from fhir_pts.analyses import stats
from fhir_pts.analyses.api import CurvePoint, Statistic
from fhir_pts.pooling.ols import ols_from_cross_products

__all__ = ["PooledStatistic", "heterogeneity", "pooled_statistics", "stratified_signed_rank", "variance"]


@dataclass
class PooledStatistic:
    """One pooled statistic and whether it equals the union's exactly (``reason`` when it does not)."""

    statistic: Statistic
    exact: bool
    reason: str = ""


def variance(n: int, total: float, total_sq: float) -> float | None:
    """Sample variance from n, Σx, Σx² in exact arithmetic (no cancellation)."""
    if n < 2:
        return None
    s, s2 = Fraction(total), Fraction(total_sq)
    var = (s2 - s * s / n) / (n - 1)
    return float(max(var, Fraction(0)))


def heterogeneity(sites: Sequence[agg.Moments]) -> tuple[float | None, float | None, float | None]:
    """Cochran's Q, its p-value (χ², k − 1 df) and I² (percent) of the sites' means (inverse-variance)."""
    means, weights = [], []
    for m in sites:
        if m.n is None or m.total is None or m.total_sq is None or m.n < 2:
            continue
        var = variance(m.n, m.total, m.total_sq)
        if not var:
            continue
        means.append(m.total / m.n)
        weights.append(m.n / var)
    k = len(means)
    if k < 2:
        return None, None, None
    pooled = sum(w * x for w, x in zip(weights, means, strict=True)) / sum(weights)
    q = sum(w * (x - pooled) ** 2 for w, x in zip(weights, means, strict=True))
    p = float(sps.chi2.sf(q, k - 1))
    i2 = 100.0 * max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return q, p, i2


def stratified_signed_rank(strata: Sequence[Any]) -> tuple[float | None, float | None]:
    """Site-stratified signed-rank test (van Elteren weights ``1/(n_k+1)``): ``(z, two-sided p)``.

    Per stratum k with ``n_k`` non-zero differences: E = n_k(n_k+1)/4, Var = n_k(n_k+1)(2n_k+1)/24 − T_k/48
    (T_k the tie correction Σ(t³ − t)); ``z = Σ w_k (V_k − E_k) / sqrt(Σ w_k² Var_k)``, normal approximation
    without continuity correction. None when no stratum has a non-zero difference.
    """
    num = 0.0
    var = 0.0
    for s in strata:
        if s.nonzero is None or s.v is None or s.tie_correction is None or s.nonzero == 0:
            continue
        n = s.nonzero
        w = 1.0 / (n + 1)
        num += w * (s.v - n * (n + 1) / 4.0)
        var += w * w * (n * (n + 1) * (2 * n + 1) / 24.0 - s.tie_correction / 48.0)
    if var <= 0:
        return None, None
    z = num / math.sqrt(var)
    return z, float(2.0 * sps.norm.sf(abs(z)))


_NOT_SHARED = "needs every site's value distribution (fhir-pts run --share-distributions)"
_SUPPRESSED = "a site suppressed some of its input (--min-cell-count): the sum of the sites that shared it"
_RANKS = "ranks across sites need the differences (--share-distributions); see wilcoxon_stratified"


def _stat(name: str, value: float | None, exact: bool, reason: str = "", **kw: Any) -> PooledStatistic:
    return PooledStatistic(Statistic(name, value, **kw), exact, "" if exact else reason)


def pooled_statistics(
    merged: agg.Aggregate,
    exact: bool,
    parts: Sequence[agg.Aggregate],
    by_name: Mapping[str, tuple[agg.Aggregate, bool]],
) -> tuple[list[PooledStatistic], dict[str, list[CurvePoint]]]:
    """The statistics (and curves) one merged aggregate yields, each with whether it is exact.

    ``merged``/``exact``: :func:`~fhir_pts.pooling.aggregates.merge` of ``parts`` (the sites' aggregates of one
    name); ``by_name``: every merged aggregate of the measure (the signed-rank test reads ``differences``).
    """
    from fhir_pts.analyses.descriptive import proportion_statistics
    from fhir_pts.analyses.patency import patency_statistics
    from fhir_pts.analyses.regression import fit_statistics

    out: list[PooledStatistic] = []
    curves: dict[str, list[CurvePoint]] = {}
    if isinstance(merged, agg.Count):
        value = None if merged.value is None else float(merged.value)
        out.append(_stat(merged.name, value, exact, _SUPPRESSED, n=merged.n))
    elif isinstance(merged, agg.Proportion):
        pairs = [p for p in parts if p.numerator is not None and p.denominator is not None]  # type: ignore[union-attr]
        num = sum(p.numerator for p in pairs)  # type: ignore[union-attr, misc]
        den = sum(p.denominator for p in pairs)  # type: ignore[union-attr, misc]
        out.extend(PooledStatistic(s, exact, "" if exact else _SUPPRESSED) for s in proportion_statistics(num, den))
    elif isinstance(merged, agg.Moments):
        y = merged.yields
        n = merged.n or 0
        if "mean" in y:
            mean = merged.total / n if n and merged.total is not None else None
            out.append(_stat(y["mean"], mean, exact, _SUPPRESSED, n=n, unit=merged.unit))
        if "sd" in y:
            var = variance(n, merged.total or 0.0, merged.total_sq or 0.0)
            out.append(
                _stat(y["sd"], None if var is None else math.sqrt(var), exact, _SUPPRESSED, n=n, unit=merged.unit)
            )
        reason = "each site's minimum and maximum are one patient's value: shared only with --min-cell-count 0"
        if "min" in y:
            out.append(
                _stat(y["min"], merged.minimum, merged.minimum is not None or n == 0, reason, n=n, unit=merged.unit)
            )
        if "max" in y:
            out.append(
                _stat(y["max"], merged.maximum, merged.maximum is not None or n == 0, reason, n=n, unit=merged.unit)
            )
    elif isinstance(merged, agg.KmTable):
        why = "a site coarsened or suppressed its KM table (--min-cell-count)"
        if merged.times is None:
            durations, event_observed = [], []
        else:
            durations, event_observed = merged.durations()
        km = stats.kaplan_meier(durations, event_observed)
        if merged.reverse:
            median = stats.reverse_km_median(durations, event_observed) if km.n else None
            out.append(_stat(merged.yields.get("median", "reverse_km_median"), median, exact, why, n=km.n, unit="mo"))
        else:
            patients = merged.patients if merged.patients is not None else km.n + (merged.excluded or 0)
            exact_stats = patency_statistics(km, patients, merged.excluded or 0)
            out.extend(PooledStatistic(s, exact, "" if exact else why) for s in exact_stats)
            curves[merged.name] = km.curve()
    elif isinstance(merged, agg.Distribution):
        q1, med, q3 = stats.quartiles(list(merged.values)) if merged.values is not None else (None, None, None)
        shared = merged.values is not None
        why = _NOT_SHARED if all(getattr(p, "n", None) is not None for p in parts) else _SUPPRESSED
        for role, value in (("median", med), ("q1", q1), ("q3", q3)):
            if role in merged.yields:
                out.append(
                    _stat(merged.yields[role], value if shared else None, exact, why, n=merged.n, unit=merged.unit)
                )
    elif isinstance(merged, agg.SignedRank):
        y = merged.yields
        differences = by_name.get("differences")
        strata_known = all(s.nonzero is not None for s in merged.strata)
        pairs = sum(s.pairs or 0 for s in merged.strata)
        if "v" in y:
            diffs = differences[0] if differences is not None else None
            if (
                isinstance(diffs, agg.Distribution)
                and diffs.values is not None
                and differences is not None
                and differences[1]
            ):
                test = stats.wilcoxon_signed_rank(list(diffs.values), [0.0] * len(diffs.values))
                out.append(_stat(y["v"], test.v, True, p_value=test.p_value, n=pairs))
            else:
                out.append(_stat(y["v"], None, False, _RANKS, n=pairs))
        if "nonzero" in y:
            nonzero = sum(s.nonzero or 0 for s in merged.strata)
            out.append(_stat(y["nonzero"], float(nonzero), strata_known, _SUPPRESSED, n=pairs))
        z, p = stratified_signed_rank(merged.strata)
        out.append(_stat(f"{y.get('v', merged.name)}_stratified", z, exact, _SUPPRESSED, p_value=p, n=pairs))
    elif isinstance(merged, agg.CrossProducts):
        fit = ols_from_cross_products(merged)
        out.extend(PooledStatistic(s, exact, "" if exact else _SUPPRESSED) for s in fit_statistics(fit))
    if isinstance(merged, agg.Moments) and "mean" in merged.yields and len(parts) > 1:
        q, p, i2 = heterogeneity([m for m in parts if isinstance(m, agg.Moments)])
        name = merged.yields["mean"]
        out.append(_stat(f"{name}_q", q, exact, _SUPPRESSED, p_value=p, n=merged.n))
        out.append(_stat(f"{name}_i2", i2, exact, _SUPPRESSED, n=merged.n, unit="%"))
    return out, curves
