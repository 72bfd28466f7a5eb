"""Sufficient statistics of one site's analyses: what makes pooling exact without patient-level data.

An analysis returns, beside its statistics, a list of *aggregates* (``AnalysisResult.aggregates``): the smallest
summaries from which the coordinating centre recomputes every figure of the union of the sites' patients —
exactly, with the very functions a single-site run uses (:mod:`fhir_pts.analyses.stats`):

- :class:`Count`: one count of patients (``patients``, ``female``, ``outcome_unknown`` …) with its ``n``;
- :class:`Proportion`: numerator and denominator (Clopper–Pearson CI of the pooled proportion);
- :class:`Moments`: n, Σx, Σx², min, max (mean and sample SD of the union);
- :class:`KmTable`: the Kaplan–Meier table — each distinct time with its events and censorings (the union's
  table is the merge of the sites' tables, which gives the union's KM, log-log CI, numbers at risk, median);
- :class:`Distribution`: the sorted values (medians and quartiles); shared only when the site opts in;
- :class:`SignedRank`: per site (stratum) Wilcoxon's V, non-zero pairs, zeros and tie correction Σ(t³ − t):
  a site-stratified (van Elteren style) signed-rank test is exact from them;
- :class:`CrossProducts`: n, XᵀX, Xᵀy, yᵀy of a linear model (same terms, same order): the pooled OLS.

Each aggregate names the statistics it yields (``yields``: role → statistic name, e.g. ``mean`` → ``age_mean``),
so pooling needs no knowledge of particular measures. Everything here is pure: numbers in, numbers out.
Units are the caller's (the analyses: months from day 0 for times, years for age, score points).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = [
    "Aggregate",
    "Count",
    "CrossProducts",
    "Distribution",
    "KmTable",
    "Moments",
    "Proportion",
    "SignedRank",
    "SignedRankStratum",
    "count",
    "cross_products",
    "distribution",
    "km_table",
    "moments",
    "signed_rank",
]


def _finite(values: Any) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=float).reshape(-1)
    return arr[~np.isnan(arr)]


@dataclass(frozen=True)
class Count:
    """A count of patients ``value`` computed on ``n`` patients (``None``: suppressed at the site)."""

    name: str
    value: int | None
    n: int | None = None
    kind: Literal["count"] = "count"


@dataclass(frozen=True)
class Proportion:
    """``numerator`` / ``denominator`` (patients); yields ``numerator``, ``denominator`` and ``name``."""

    name: str
    numerator: int | None
    denominator: int | None
    kind: Literal["proportion"] = "proportion"


@dataclass(frozen=True)
class Moments:
    """n, Σx, Σx², min and max of a variable; ``yields`` maps ``mean``/``sd``/``min``/``max`` to statistic names.

    ``minimum`` / ``maximum`` are ``None`` when suppressed (each is one patient's value).
    """

    name: str
    n: int | None
    total: float | None
    total_sq: float | None
    minimum: float | None
    maximum: float | None
    unit: str | None = None
    yields: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["moments"] = "moments"


@dataclass(frozen=True)
class KmTable:
    """A Kaplan–Meier table: distinct ``times`` (ascending) with ``events`` and ``censored`` at each.

    ``patients``: every patient of the measure; ``excluded``: those without a usable time. ``reverse``: the table
    is used for the reverse Kaplan–Meier (median follow-up) of its times; its ``events`` are still the losses of
    patency (the reverse KM flips them). ``times``/``events``/``censored`` are ``None`` when the site suppressed
    the whole table. ``coarsened``: rows were merged into bins at the site (suppression), the
    table is no longer the exact one. ``yields`` names the statistics (``median`` for a reverse table).
    """

    name: str
    times: tuple[float, ...] | None
    events: tuple[int, ...] | None
    censored: tuple[int, ...] | None
    patients: int | None
    excluded: int | None
    reverse: bool = False
    coarsened: bool = False
    yields: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["km-table"] = "km-table"

    @property
    def n(self) -> int | None:
        """Patients with a usable time (events + censorings); None when the table is suppressed."""
        if self.events is None or self.censored is None:
            return None
        return int(sum(self.events) + sum(self.censored))

    def durations(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """The table as ``(durations, event_observed)`` arrays — one entry per patient, sorted by duration: the
        input of ``stats.kaplan_meier`` (True = event, False = censored at that time)."""
        if self.times is None:
            raise ValueError(f"KM table {self.name!r} was suppressed")
        t = np.asarray(self.times, dtype=float)
        d = np.asarray(self.events, dtype=np.int64)
        c = np.asarray(self.censored, dtype=np.int64)
        durations = np.concatenate([np.repeat(t, d), np.repeat(t, c)])
        event_observed = np.concatenate([np.ones(int(d.sum()), dtype=bool), np.zeros(int(c.sum()), dtype=bool)])
        order = np.argsort(durations, kind="stable")
        return durations[order], event_observed[order]


@dataclass(frozen=True)
class Distribution:
    """The sorted values of a variable (shared only with ``--share-distributions``).

    ``yields`` maps ``median``/``q1``/``q3`` to statistic names; ``values`` is ``None`` when not shared.
    ``n`` is the number of values (shared even when the values are not).
    """

    name: str
    n: int | None
    values: tuple[float, ...] | None
    unit: str | None = None
    yields: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["distribution"] = "distribution"


@dataclass(frozen=True)
class SignedRankStratum:
    """One site's paired Wilcoxon signed-rank summary (R ``wilcox.test(paired = TRUE)`` conventions).

    ``pairs``: complete pairs; ``nonzero``: non-zero differences; ``v``: R's V (sum of the positive ranks,
    average ranks for ties); ``tie_correction``: Σ(t³ − t) over the groups of tied |differences|.
    """

    pairs: int | None
    nonzero: int | None
    v: float | None
    tie_correction: float | None


@dataclass(frozen=True)
class SignedRank:
    """Signed-rank summaries, one stratum per site (one at a site, several once pooled).

    Yields ``wilcoxon`` (exact for the union only when the differences' :class:`Distribution` named
    ``differences`` is shared) and ``wilcoxon_n_nonzero``; pooling adds the stratified test.
    """

    name: str
    strata: tuple[SignedRankStratum, ...]
    yields: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["signed-rank"] = "signed-rank"


@dataclass(frozen=True)
class CrossProducts:
    """A linear model's sufficient statistics on its complete cases: n, XᵀX, Xᵀy, yᵀy.

    ``terms``: the design columns in model order (``intercept`` first when the model has one), as the
    ``coef:<term>`` statistics name them; ``xtx`` row-major ``len(terms)²``; ``formula``: the model, R style.
    ``y_total``: Σy (the centring of R² needs it when the model has no intercept column to read it from).
    """

    name: str
    terms: tuple[str, ...]
    n: int | None
    xtx: tuple[float, ...] | None
    xty: tuple[float, ...] | None
    yty: float | None
    y_total: float | None
    formula: str
    kind: Literal["cross-products"] = "cross-products"

    def matrices(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        k = len(self.terms)
        return np.asarray(self.xtx, dtype=float).reshape(k, k), np.asarray(self.xty, dtype=float)


Aggregate = Union[Count, Proportion, Moments, KmTable, Distribution, SignedRank, CrossProducts]  # noqa: UP007


# ------------------------------------------------------------------------------------------------- builders


def count(name: str, value: int, n: int | None = None) -> Count:
    return Count(name=name, value=int(value), n=None if n is None else int(n))


def moments(name: str, values: Any, *, unit: str | None = None, yields: Mapping[str, str] | None = None) -> Moments:
    """Moments of ``values`` (missing values dropped)."""
    x = _finite(values)
    n = int(x.size)
    return Moments(
        name=name,
        n=n,
        total=float(np.sum(x)) if n else 0.0,
        total_sq=float(np.sum(x * x)) if n else 0.0,
        minimum=float(x.min()) if n else None,
        maximum=float(x.max()) if n else None,
        unit=unit,
        yields=dict(yields or {}),
    )


def km_table(
    name: str,
    durations: Any,
    event_observed: Any,
    *,
    patients: int,
    excluded: int,
    reverse: bool = False,
    yields: Mapping[str, str] | None = None,
) -> KmTable:
    """The Kaplan–Meier table of ``durations`` (time from the time origin, the caller's unit: the analyses pass
    months from day 0) and ``event_observed`` (True = event, False = censored at that time)."""
    t = np.asarray(durations, dtype=float).reshape(-1)
    e = np.asarray(event_observed, dtype=bool).reshape(-1)
    times = np.unique(t)
    idx = np.searchsorted(times, t)
    events = np.bincount(idx, weights=e.astype(float), minlength=times.size).astype(np.int64)
    total = np.bincount(idx, minlength=times.size).astype(np.int64)
    return KmTable(
        name=name,
        times=tuple(float(v) for v in times),
        events=tuple(int(v) for v in events),
        censored=tuple(int(v) for v in total - events),
        patients=int(patients),
        excluded=int(excluded),
        reverse=reverse,
        yields=dict(yields or {}),
    )


def distribution(
    name: str, values: Any, *, unit: str | None = None, yields: Mapping[str, str] | None = None
) -> Distribution:
    """The sorted values of ``values`` (missing values dropped)."""
    x = np.sort(_finite(values))
    values_t = tuple(float(v) for v in x)
    return Distribution(name=name, n=int(x.size), values=values_t, unit=unit, yields=dict(yields or {}))


def signed_rank(name: str, baseline: Any, followup: Any, *, yields: Mapping[str, str] | None = None) -> SignedRank:
    """One stratum from paired values (pairs with a missing value dropped, zero differences dropped as R)."""
    x = np.asarray(baseline, dtype=float).reshape(-1)
    y = np.asarray(followup, dtype=float).reshape(-1)
    ok = ~(np.isnan(x) | np.isnan(y))
    d = x[ok] - y[ok]
    pairs = int(d.size)
    d = d[d != 0]
    if d.size:
        ranks = sps.rankdata(np.abs(d), method="average")
        v = float(ranks[d > 0].sum())
        _, sizes = np.unique(ranks, return_counts=True)
        ties = float(np.sum(sizes.astype(float) ** 3 - sizes))
    else:
        v, ties = 0.0, 0.0
    stratum = SignedRankStratum(pairs=pairs, nonzero=int(d.size), v=v, tie_correction=ties)
    return SignedRank(name=name, strata=(stratum,), yields=dict(yields or {}))


def cross_products(name: str, y: Any, x: Any, terms: Sequence[str], formula: str) -> CrossProducts:
    """XᵀX, Xᵀy, yᵀy of the complete-case design ``x`` (n × k) and response ``y`` (n)."""
    yv = np.asarray(y, dtype=float).reshape(-1)
    xm = np.asarray(x, dtype=float).reshape(yv.size, len(terms))
    return CrossProducts(
        name=name,
        terms=tuple(terms),
        n=int(yv.size),
        xtx=tuple(float(v) for v in (xm.T @ xm).reshape(-1)),
        xty=tuple(float(v) for v in xm.T @ yv),
        yty=float(yv @ yv),
        y_total=float(yv.sum()),
        formula=formula,
    )
