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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    "merge",
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
        """The table as (durations, lost) arrays — one entry per patient, the input of ``stats.kaplan_meier``."""
        if self.times is None:
            raise ValueError(f"KM table {self.name!r} was suppressed")
        t = np.asarray(self.times, dtype=float)
        d = np.asarray(self.events, dtype=np.int64)
        c = np.asarray(self.censored, dtype=np.int64)
        durations = np.concatenate([np.repeat(t, d), np.repeat(t, c)])
        lost = np.concatenate([np.ones(int(d.sum()), dtype=bool), np.zeros(int(c.sum()), dtype=bool)])
        order = np.argsort(durations, kind="stable")
        return durations[order], lost[order]


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
    lost: Any,
    *,
    patients: int,
    excluded: int,
    reverse: bool = False,
    yields: Mapping[str, str] | None = None,
) -> KmTable:
    """The Kaplan–Meier table of ``durations`` (time from the origin) and ``lost`` (True = event)."""
    t = np.asarray(durations, dtype=float).reshape(-1)
    e = np.asarray(lost, dtype=bool).reshape(-1)
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


# ---------------------------------------------------------------------------------------------------- merge


class MergeError(ValueError):
    """Aggregates of the same name that cannot be combined (different terms, kinds …)."""


def _sum(values: Iterable[int | float | None]) -> tuple[Any, bool]:
    """Sum of the known values, and whether every value was known."""
    vals = list(values)
    known = [v for v in vals if v is not None]
    return (sum(known) if known else (0 if not vals else None)), len(known) == len(vals)


def merge(parts: Sequence[Aggregate]) -> tuple[Aggregate, bool]:
    """The aggregate of the union of the sites' patients, and whether it is exact.

    Not exact when a site suppressed a part (it is then left out of that part) or coarsened its KM table.
    """
    if not parts:
        raise MergeError("nothing to merge")
    first = parts[0]
    if any(type(p) is not type(first) for p in parts):
        raise MergeError(f"aggregate {first.name!r}: different kinds across sites")
    if isinstance(first, Count):
        value, ok_v = _sum(p.value for p in parts)  # type: ignore[union-attr]
        n, ok_n = _sum(p.n for p in parts)  # type: ignore[union-attr]
        return replace(first, value=value, n=n), ok_v and ok_n
    if isinstance(first, Proportion):
        num, ok1 = _sum(p.numerator for p in parts)  # type: ignore[union-attr]
        den, ok2 = _sum(p.denominator for p in parts)  # type: ignore[union-attr]
        return replace(first, numerator=num, denominator=den), ok1 and ok2
    if isinstance(first, Moments):
        ms: list[Moments] = list(parts)  # type: ignore[arg-type]
        usable = [m for m in ms if m.n is not None and m.total is not None and m.total_sq is not None]
        mins = [m.minimum for m in ms if m.minimum is not None]
        maxs = [m.maximum for m in ms if m.maximum is not None]
        exact = len(usable) == len(ms)
        nonempty = [m for m in ms if m.n]
        extremes_exact = all(m.minimum is not None and m.maximum is not None for m in nonempty)
        merged = replace(
            first,
            n=sum(m.n for m in usable),  # type: ignore[misc]
            total=_exact_sum(m.total for m in usable),  # type: ignore[misc]
            total_sq=_exact_sum(m.total_sq for m in usable),  # type: ignore[misc]
            minimum=min(mins) if mins and extremes_exact else None,
            maximum=max(maxs) if maxs and extremes_exact else None,
        )
        return merged, exact and extremes_exact
    if isinstance(first, KmTable):
        ks: list[KmTable] = list(parts)  # type: ignore[arg-type]
        table: dict[float, list[int]] = {}
        shown = [k for k in ks if k.times is not None]
        for k in shown:
            for t, d, c in zip(k.times, k.events, k.censored, strict=True):  # type: ignore[arg-type]
                row = table.setdefault(t, [0, 0])
                row[0] += d
                row[1] += c
        times = sorted(table)
        patients, ok_p = _sum(k.patients for k in ks)
        excluded, ok_x = _sum(k.excluded for k in ks)
        coarsened = any(k.coarsened for k in ks)
        merged = replace(
            first,
            times=tuple(times),
            events=tuple(table[t][0] for t in times),
            censored=tuple(table[t][1] for t in times),
            patients=patients,
            excluded=excluded,
            coarsened=coarsened,
        )
        return merged, ok_p and ok_x and not coarsened and len(shown) == len(ks)
    if isinstance(first, Distribution):
        ds: list[Distribution] = list(parts)  # type: ignore[arg-type]
        n, ok_n = _sum(d.n for d in ds)
        shared = all(d.values is not None for d in ds)
        values = tuple(sorted(v for d in ds for v in (d.values or ()))) if shared else None
        return replace(first, n=n, values=values), ok_n and shared
    if isinstance(first, SignedRank):
        srs: list[SignedRank] = list(parts)  # type: ignore[arg-type]
        strata = tuple(s for sr in srs for s in sr.strata)
        exact = all(s.nonzero is not None and s.v is not None and s.tie_correction is not None for s in strata)
        return replace(first, strata=strata), exact
    if isinstance(first, CrossProducts):
        cps: list[CrossProducts] = list(parts)  # type: ignore[arg-type]
        for cp in cps[1:]:
            if cp.terms != first.terms:
                raise MergeError(
                    f"model {first.name!r}: terms differ across sites ({', '.join(first.terms)} vs "
                    f"{', '.join(cp.terms)})"
                )
        usable = [c for c in cps if c.n is not None and c.xtx is not None]
        exact = len(usable) == len(cps)
        if not usable:
            return replace(first, n=None, xtx=None, xty=None, yty=None, y_total=None), False
        k = len(first.terms)
        merged_cp = replace(
            first,
            n=sum(c.n for c in usable),  # type: ignore[misc]
            xtx=tuple(_exact_sum(c.xtx[i] for c in usable) for i in range(k * k)),  # type: ignore[index]
            xty=tuple(_exact_sum(c.xty[i] for c in usable) for i in range(k)),  # type: ignore[index]
            yty=_exact_sum(c.yty for c in usable),  # type: ignore[misc]
            y_total=_exact_sum(c.y_total for c in usable),  # type: ignore[misc]
        )
        return merged_cp, exact
    raise MergeError(f"unknown aggregate {first!r}")  # pragma: no cover


def _exact_sum(values: Iterable[float]) -> float:
    """Σ of floats correctly rounded (``math.fsum``): the pooled sums do not depend on the order of the sites."""
    return math.fsum(float(v) for v in values)
