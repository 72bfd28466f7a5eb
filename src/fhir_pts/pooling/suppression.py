"""Small-cell suppression of the aggregates a site shares (``fhir-pts run --min-cell-count N``).

The rule is :mod:`fhir_pts.disclosure`'s, one setting for ``serve`` and pooling: a count ``c`` of patients with
``0 < c < N`` is not shared. Applied to each kind of aggregate:

- :class:`Count`, :class:`Proportion`: each disclosive count (value or ``n``) is left out (``None``);
- :class:`Moments`, :class:`Distribution`, :class:`CrossProducts`, a :class:`SignedRankStratum`: everything is
  left out when their ``n`` is disclosive; a minimum and a maximum are one patient's value each and are never
  shared when ``N > 1``;
- :class:`KmTable`: the rows are merged into consecutive bins whose events and censorings are each 0 or ≥ N,
  reported at the bin's last time (``coarsened``: the pooled curve is then approximate, the numbers at risk at
  the reported times stay exact); when no such binning exists the table is left out.

``N`` of 0 or 1 shares everything exactly. The site's own results (``results.csv``, the report) are never
suppressed: only what goes into the shared aggregates is.
"""

from __future__ import annotations

from dataclasses import replace

from fhir_pts.analyses import aggregates as agg
from fhir_pts.disclosure import is_disclosive


def _keep(value: int | None, n: int) -> int | None:
    return None if value is None or is_disclosive(int(value), n) else value


def coarsen(table: agg.KmTable, min_cell_count: int) -> agg.KmTable:
    """``table`` with its rows merged into bins of 0 or ≥ ``min_cell_count`` events and censorings each."""
    if table.times is None or table.events is None or table.censored is None:
        return table
    bins: list[tuple[float, int, int]] = []
    d_acc = c_acc = 0
    t_last = 0.0
    ok = lambda x: x == 0 or x >= min_cell_count  # noqa: E731
    for t, d, c in zip(table.times, table.events, table.censored, strict=True):
        d_acc, c_acc, t_last = d_acc + d, c_acc + c, t
        if ok(d_acc) and ok(c_acc):
            bins.append((t_last, d_acc, c_acc))
            d_acc = c_acc = 0
    if d_acc or c_acc:  # a short tail: merged into the last bin, if that keeps the cells safe
        if bins and ok(bins[-1][1] + d_acc) and ok(bins[-1][2] + c_acc):
            bins[-1] = (t_last, bins[-1][1] + d_acc, bins[-1][2] + c_acc)
        else:
            return replace(table, times=None, events=None, censored=None, coarsened=True)
    changed = len(bins) != len(table.times)
    return replace(
        table,
        times=tuple(b[0] for b in bins),
        events=tuple(b[1] for b in bins),
        censored=tuple(b[2] for b in bins),
        coarsened=table.coarsened or changed,
    )


def suppress(aggregate: agg.Aggregate, min_cell_count: int) -> agg.Aggregate:
    """``aggregate`` as it may leave the site under a minimum cell size of ``min_cell_count`` patients."""
    n = int(min_cell_count)
    if n <= 1:
        return aggregate
    if isinstance(aggregate, agg.Count):
        return replace(aggregate, value=_keep(aggregate.value, n), n=_keep(aggregate.n, n))
    if isinstance(aggregate, agg.Proportion):
        return replace(aggregate, numerator=_keep(aggregate.numerator, n), denominator=_keep(aggregate.denominator, n))
    if isinstance(aggregate, agg.Moments):
        if aggregate.n is None or is_disclosive(aggregate.n, n):
            return replace(aggregate, n=None, total=None, total_sq=None, minimum=None, maximum=None)
        return replace(aggregate, minimum=None, maximum=None)
    if isinstance(aggregate, agg.Distribution):
        if aggregate.n is None or is_disclosive(aggregate.n, n):
            return replace(aggregate, n=None, values=None)
        return aggregate
    if isinstance(aggregate, agg.SignedRank):
        strata = tuple(
            s
            if s.pairs is not None and not is_disclosive(s.pairs, n) and not is_disclosive(s.nonzero or 0, n)
            else agg.SignedRankStratum(pairs=_keep(s.pairs, n), nonzero=None, v=None, tie_correction=None)
            for s in aggregate.strata
        )
        return replace(aggregate, strata=strata)
    if isinstance(aggregate, agg.CrossProducts):
        if aggregate.n is None or is_disclosive(aggregate.n, n):
            return replace(aggregate, n=None, xtx=None, xty=None, yty=None, y_total=None)
        return aggregate
    if isinstance(aggregate, agg.KmTable):
        table = coarsen(aggregate, n)
        return replace(table, patients=_keep(table.patients, n), excluded=_keep(table.excluded, n))
    raise TypeError(f"unknown aggregate {aggregate!r}")  # pragma: no cover
