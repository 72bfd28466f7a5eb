"""Merging the sites' aggregates: the aggregate of the union of their patients (:func:`merge`).

The aggregate types and their builders are what a *site* computes and shares, so they live with the analyses
that build them (:mod:`fhir_pts.analyses.aggregates`); they are re-exported here, where pooling has always
documented them (``from fhir_pts.pooling.aggregates import KmTable, merge`` keeps working).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from fhir_pts.analyses import aggregates as agg
from fhir_pts.analyses.aggregates import *  # noqa: F403  (the re-export: every name of its __all__)

__all__ = [*agg.__all__, "MergeError", "merge"]


# ---------------------------------------------------------------------------------------------------- merge


class MergeError(ValueError):
    """Aggregates of the same name that cannot be combined (different terms, kinds …)."""


def _sum(values: Iterable[int | float | None]) -> tuple[Any, bool]:
    """Sum of the known values, and whether every value was known."""
    vals = list(values)
    known = [v for v in vals if v is not None]
    return (sum(known) if known else (0 if not vals else None)), len(known) == len(vals)


def merge(parts: Sequence[agg.Aggregate]) -> tuple[agg.Aggregate, bool]:
    """The aggregate of the union of the sites' patients, and whether it is exact.

    Not exact when a site suppressed a part (it is then left out of that part) or coarsened its KM table.
    """
    if not parts:
        raise MergeError("nothing to merge")
    first = parts[0]
    if any(type(p) is not type(first) for p in parts):
        raise MergeError(f"aggregate {first.name!r}: different kinds across sites")
    if isinstance(first, agg.Count):
        value, ok_v = _sum(p.value for p in parts)  # type: ignore[union-attr]
        n, ok_n = _sum(p.n for p in parts)  # type: ignore[union-attr]
        return replace(first, value=value, n=n), ok_v and ok_n
    if isinstance(first, agg.Proportion):
        num, ok1 = _sum(p.numerator for p in parts)  # type: ignore[union-attr]
        den, ok2 = _sum(p.denominator for p in parts)  # type: ignore[union-attr]
        return replace(first, numerator=num, denominator=den), ok1 and ok2
    if isinstance(first, agg.Moments):
        ms: list[agg.Moments] = list(parts)  # type: ignore[arg-type]
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
    if isinstance(first, agg.KmTable):
        ks: list[agg.KmTable] = list(parts)  # type: ignore[arg-type]
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
    if isinstance(first, agg.Distribution):
        ds: list[agg.Distribution] = list(parts)  # type: ignore[arg-type]
        n, ok_n = _sum(d.n for d in ds)
        shared = all(d.values is not None for d in ds)
        values = tuple(sorted(v for d in ds for v in (d.values or ()))) if shared else None
        return replace(first, n=n, values=values), ok_n and shared
    if isinstance(first, agg.SignedRank):
        srs: list[agg.SignedRank] = list(parts)  # type: ignore[arg-type]
        strata = tuple(s for sr in srs for s in sr.strata)
        exact = all(s.nonzero is not None and s.v is not None and s.tie_correction is not None for s in strata)
        return replace(first, strata=strata), exact
    if isinstance(first, agg.CrossProducts):
        cps: list[agg.CrossProducts] = list(parts)  # type: ignore[arg-type]
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
