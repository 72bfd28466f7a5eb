"""``report.html`` of ``fhir-pts pool``: sites, pooled figures, heterogeneity and what is exact (Jinja2).

The report is built from the pooled result only (the sites' shared aggregates): per-site and pooled
Kaplan–Meier curves, a forest plot of per-site estimates with the pooled one, Cochran's Q and I² of the sites'
means (score gains), and a table of every pooled statistic with whether it is exact and why not. Markup is in
``templates/pooled.html.j2``; figures are inline SVG (one self-contained file).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

from scipy import stats as sps

from fhir_pts import __version__
from fhir_pts.analyses import stats
from fhir_pts.analyses.api import CurvePoint
from fhir_pts.outputs.pooled_report.figures import SiteEstimate, km_panels, site_forest
from fhir_pts.outputs.rendering import render
from fhir_pts.outputs.tables import format_number
from fhir_pts.pooling.aggregates import Count, KmTable, Moments, Proportion
from fhir_pts.pooling.combine import variance
from fhir_pts.pooling.result import PooledMeasure, PoolResult

__all__ = ["pooled_report_html"]

#: Time (months) of the Kaplan–Meier estimates in the forest plot.
FOREST_KM_MONTHS = 12


def _svg(fig: Any, name: str) -> str | None:
    if fig is None:
        return None
    text = render(fig, name, formats=("svg",)).svg.decode("utf-8")  # inlined in the page: no PNG or PDF
    return re.sub(r"^<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", "", text)


def _site_km_curve(table: KmTable) -> list[CurvePoint]:
    if table.times is None:
        return []
    durations, lost = table.durations()
    return stats.kaplan_meier(durations, lost).curve()


def _pooled_value(measure: PooledMeasure, name: str) -> tuple[float | None, float | None, float | None]:
    for p in measure.statistics:
        if p.statistic.name == name:
            return p.statistic.value, p.statistic.ci_low, p.statistic.ci_high
    return None, None, None


def _mean_ci(m: Moments) -> tuple[float | None, float | None, float | None]:
    if not m.n or m.total is None or m.total_sq is None:
        return None, None, None
    mean = m.total / m.n
    var = variance(m.n, m.total, m.total_sq)
    if var is None:
        return mean, None, None
    half = float(sps.t.ppf(0.975, m.n - 1)) * math.sqrt(var / m.n)
    return mean, mean - half, mean + half


def _forest_rows(result: PoolResult) -> dict[str, list[SiteEstimate]]:
    panels: dict[str, list[SiteEstimate]] = {}
    labels = [s.label for s in result.sites]
    for measure in result.measures:
        for i, agg in enumerate(measure.aggregates):
            parts = [aggs[i] for aggs in measure.site_aggregates]
            rows: list[SiteEstimate] = []
            if isinstance(agg, Proportion):
                title, stat = f"{measure.info.title}: proportion", "proportion"
                for label, p in zip(labels, parts, strict=True):
                    if isinstance(p, Proportion) and p.numerator is not None and p.denominator:
                        lo, hi = stats.clopper_pearson(p.numerator, p.denominator)
                        share = p.numerator / p.denominator
                        rows.append(SiteEstimate(f"{label} ({p.numerator}/{p.denominator})", share, lo, hi))
                    else:
                        rows.append(SiteEstimate(label, None, None, None))
            elif isinstance(agg, Moments) and "mean" in agg.yields:
                stat = agg.yields["mean"]
                title = f"{measure.info.title}: {stat}"
                for label, m in zip(labels, parts, strict=True):
                    est, lo, hi = _mean_ci(m) if isinstance(m, Moments) else (None, None, None)
                    rows.append(SiteEstimate(f"{label} (n={m.n if isinstance(m, Moments) else '?'})", est, lo, hi))
                est, lo, hi = _mean_ci(agg)
                rows.append(SiteEstimate("pooled", est, lo, hi, pooled=True))
                panels[title] = rows
                continue
            elif isinstance(agg, KmTable) and not agg.reverse:
                stat = f"km_{FOREST_KM_MONTHS}m"
                title = f"{measure.info.title}: Kaplan–Meier at {FOREST_KM_MONTHS} months"
                for label, t in zip(labels, parts, strict=True):
                    point = None
                    if isinstance(t, KmTable) and t.times is not None and t.n:
                        durations, lost = t.durations()
                        point = stats.kaplan_meier(durations, lost).at(FOREST_KM_MONTHS)
                    rows.append(SiteEstimate(label, *(point if point else (None, None, None))))
            else:
                continue
            est, lo, hi = _pooled_value(measure, stat)
            rows.append(SiteEstimate("pooled", est, lo, hi, pooled=True))
            panels[title] = rows
    return panels


def _site_rows(result: PoolResult) -> list[dict[str, Any]]:
    rows = []
    for idx, site in enumerate(result.sites):
        patients = None
        mcc: set[int] = set()
        shared: set[bool] = set()
        for measure in result.measures:
            if idx < len(measure.site_min_cell_counts):
                mcc.add(measure.site_min_cell_counts[idx])
                shared.add(measure.site_distributions_shared[idx])
            for agg in measure.site_aggregates[idx] if idx < len(measure.site_aggregates) else []:
                if measure.info.id == "cohort" and isinstance(agg, Count) and agg.name == "patients":
                    patients = agg.value
        rows.append(
            {
                "label": site.label,
                "source": site.source,
                "bundle_id": site.bundle_id or "",
                "patients": "suppressed" if patients is None else patients,
                "min_cell_count": ", ".join(str(m) for m in sorted(mcc)),
                "distributions": "yes" if shared == {True} else ("no" if shared == {False} else "some measures"),
            }
        )
    return rows


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return ""
    if float(x).is_integer():
        return format_number(x)
    return f"{x:.{digits}g}"


def _measure_rows(measure: PooledMeasure) -> list[dict[str, Any]]:
    rows = []
    for p in measure.statistics:
        s = p.statistic
        ci = f"{_fmt(s.ci_low)} – {_fmt(s.ci_high)}" if s.ci_low is not None or s.ci_high is not None else ""
        rows.append(
            {
                "name": s.name,
                "value": _fmt(s.value),
                "ci": ci,
                "p": _fmt(s.p_value, 3),
                "n": "" if s.n is None else s.n,
                "exact": p.exact,
                "reason": p.reason,
            }
        )
    return rows


def _heterogeneity_rows(result: PoolResult) -> list[dict[str, Any]]:
    rows = []
    for measure in result.measures:
        by_name = {p.statistic.name: p.statistic for p in measure.statistics}
        for name, s in by_name.items():
            if name.endswith("_i2") and f"{name[:-3]}_q" in by_name:
                q = by_name[f"{name[:-3]}_q"]
                rows.append(
                    {
                        "measure": measure.info.id,
                        "statistic": name[:-3],
                        "q": _fmt(q.value),
                        "p": _fmt(q.p_value, 3),
                        "i2": "" if s.value is None else f"{s.value:.1f} %",
                    }
                )
    return rows


def pooled_report_html(result: PoolResult, *, date: dt.datetime | None = None) -> str:
    """The pooled report as one self-contained HTML page."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    labels = [s.label for s in result.sites]
    km: dict[str, tuple[dict[str, list[CurvePoint]], list[CurvePoint]]] = {}
    for measure in result.measures:
        for i, agg in enumerate(measure.aggregates):
            if isinstance(agg, KmTable) and not agg.reverse:
                sites = {
                    label: _site_km_curve(aggs[i])  # type: ignore[arg-type]
                    for label, aggs in zip(labels, measure.site_aggregates, strict=True)
                }
                km[measure.info.title] = (sites, measure.curves.get(agg.name, []))
    inexact = [
        {"measure": m.info.id, "statistic": p.statistic.name, "reason": p.reason}
        for m in result.measures
        for p in m.statistics
        if not p.exact
    ]
    context = {
        "date": (date or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat(),
        "version": __version__,
        "sites": _site_rows(result),
        "km_svg": jinja2.utils.markupsafe.Markup(_svg(km_panels(km), "pooled-km") or ""),
        "forest_svg": jinja2.utils.markupsafe.Markup(_svg(site_forest(_forest_rows(result)), "pooled-forest") or ""),
        "heterogeneity": _heterogeneity_rows(result),
        "measures": [
            {
                "id": m.info.id,
                "title": m.info.title,
                "poolable": m.poolable,
                "notes": m.notes,
                "rows": _measure_rows(m),
                "populations": m.populations,
                "populations_exact": m.populations_exact,
            }
            for m in result.measures
        ],
        "n_exact": sum(p.exact for m in result.measures for p in m.statistics),
        "inexact": inexact,
    }
    return env.get_template("pooled.html.j2").render(**context)


