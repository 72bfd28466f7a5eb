"""``fhir-pts pool``: pool several sites' shared MeasureReports into the figures of the union of their patients.

:func:`pool_sites` checks that the sites ran the same measures, measure versions, assessment windows and
analysis parameters (:class:`PoolingError` naming the first difference otherwise), merges each measure's
aggregates (:func:`fhir_pts.pooling.aggregates.merge`, read from the ``aggregate`` extensions of
:mod:`fhir_pts.outputs.aggregates`) and recomputes its statistics (:mod:`fhir_pts.pooling.combine`), each
marked exact or not. :func:`write_pooled` writes ``results.csv``, ``measure-reports.json`` and ``report.html``.
See ``docs/pooling.md``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fhir_pts.analyses.api import AnalysisInfo
from fhir_pts.outputs.aggregates import (
    EXT_AGGREGATE,
    AggregateFormatError,
    read_aggregate,
    read_pooling_context,
)
from fhir_pts.pooling.aggregates import Aggregate, MergeError, merge
from fhir_pts.pooling.combine import pooled_statistics
from fhir_pts.pooling.result import PooledMeasure, PoolResult, SiteReport

__all__ = [
    "PoolResult",
    "PooledMeasure",
    "PoolingError",
    "SiteReport",
    "pool_paths",
    "pool_sites",
    "read_site",
    "site_from_bundle",
    "write_pooled",
]

#: Relative tolerance of the pooled == union guarantee (tests; docs/pooling.md).
EXACT_RELATIVE_TOLERANCE = 1e-9

_MEASURE_SCORING_EXT = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-measureScoring"


class PoolingError(ValueError):
    """The sites cannot be pooled (different measures, versions, windows, parameters, or unreadable input)."""


def _measure_id(report: Mapping[str, Any]) -> str:
    return str(report.get("measure", "")).partition("|")[0].rsplit("/", 1)[-1]


def site_from_bundle(bundle: Mapping[str, Any], label: str, source: str = "") -> SiteReport:
    """A :class:`SiteReport` from a ``measure-reports.json`` Bundle (as a dict)."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise PoolingError(f"{label}: not a FHIR Bundle of MeasureReports (resourceType must be 'Bundle')")
    reports: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for i, entry in enumerate(bundle.get("entry", []) or []):
        resource = (entry or {}).get("resource") or {}
        if resource.get("resourceType") != "MeasureReport":
            continue
        mid = _measure_id(resource)
        if not mid:
            raise PoolingError(f"{label}: entry[{i}] MeasureReport has no measure")
        if mid in reports:
            raise PoolingError(f"{label}: two MeasureReports for measure {mid!r}")
        if resource.get("status") != "complete":
            failed.append(mid)
        reports[mid] = dict(resource)
    if not reports:
        raise PoolingError(f"{label}: no MeasureReport in the Bundle")
    return SiteReport(label=label, source=source, bundle_id=bundle.get("id"), reports=reports, failed=tuple(failed))


def read_site(path: Path | str, label: str | None = None) -> SiteReport:
    """Read a site's ``measure-reports.json`` (the file, or the run's output folder holding it)."""
    p = Path(path)
    file = p / "measure-reports.json" if p.is_dir() else p
    name = label or (p.name if p.is_dir() else p.parent.name or p.name)
    try:
        bundle = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise PoolingError(f"{file}: no such file (give a measure-reports.json or a run's output folder)") from None
    except (OSError, ValueError) as exc:
        raise PoolingError(f"{file}: not readable as JSON ({exc})") from None
    return site_from_bundle(bundle, name, str(file))


# -------------------------------------------------------------------------------------------------- checks


def _context(report: Mapping[str, Any]) -> tuple[str, str, int, bool] | None:
    ctx = read_pooling_context(report)
    if ctx is None:
        return None
    return ctx.parameters, ctx.windows, ctx.min_cell_count, ctx.distributions_shared


def _aggregates(report: Mapping[str, Any]) -> list[Aggregate]:
    out = []
    for group in report.get("group", []) or []:
        for ext in group.get("extension", []) or []:
            if ext.get("url") == EXT_AGGREGATE:
                try:
                    out.append(read_aggregate(ext))
                except AggregateFormatError as exc:
                    raise PoolingError(f"{_measure_id(report)}: {exc}") from None
    return out


def _diff_json(a: str, b: str) -> str:
    """The first key whose value differs between two canonical JSON objects, as ``key: a vs b``."""
    try:
        da, db = json.loads(a), json.loads(b)
    except ValueError:
        return f"{a} vs {b}"
    if isinstance(da, dict) and isinstance(db, dict):
        for key in sorted(set(da) | set(db)):
            if da.get(key) != db.get(key):
                return f"{key}: {json.dumps(da.get(key))} vs {json.dumps(db.get(key))}"
    return f"{a} vs {b}"


def check_sites(sites: Sequence[SiteReport]) -> None:
    """Raise :class:`PoolingError` naming the first difference that forbids pooling the sites."""
    if not sites:
        raise PoolingError("no site to pool")
    labels = [s.label for s in sites]
    if len(set(labels)) != len(labels):
        raise PoolingError(f"two sites have the same name: {', '.join(labels)} (name the folders differently)")
    ref = sites[0]
    for site in sites:
        if site.failed:
            raise PoolingError(f"site {site.label}: measure(s) {', '.join(site.failed)} failed there (status error)")
    for site in sites[1:]:
        missing = [m for m in ref.reports if m not in site.reports]
        extra = [m for m in site.reports if m not in ref.reports]
        if missing or extra:
            what = []
            if missing:
                what.append(f"site {site.label} lacks {', '.join(missing)}")
            if extra:
                what.append(f"site {ref.label} lacks {', '.join(extra)}")
            raise PoolingError(f"the sites ran different measures: {'; '.join(what)}")
        for mid, report in ref.reports.items():
            other = site.reports[mid]
            if report.get("measure") != other.get("measure"):
                raise PoolingError(
                    f"measure {mid}: different versions: {ref.label} {report.get('measure')!r}, "
                    f"{site.label} {other.get('measure')!r}"
                )
            c1, c2 = _context(report), _context(other)
            if (c1 is None) != (c2 is None):
                raise PoolingError(f"measure {mid}: only one of {ref.label}, {site.label} shares aggregates")
            if c1 is None or c2 is None:
                continue
            if c1[1] != c2[1]:
                raise PoolingError(
                    f"measure {mid}: different assessment windows ({ref.label} vs {site.label}): "
                    f"{_diff_json(c1[1], c2[1])}"
                )
            if c1[0] != c2[0]:
                raise PoolingError(
                    f"measure {mid}: different parameters ({ref.label} vs {site.label}): {_diff_json(c1[0], c2[0])}"
                )
            n1 = [(a.name, a.kind) for a in _aggregates(report)]
            n2 = [(a.name, a.kind) for a in _aggregates(other)]
            if n1 != n2:
                raise PoolingError(f"measure {mid}: different aggregates ({ref.label}: {n1}; {site.label}: {n2})")


# ------------------------------------------------------------------------------------------------- pooling


def _info(report: Mapping[str, Any]) -> AnalysisInfo:
    canonical = str(report.get("measure", ""))
    _, _, version = canonical.partition("|")
    mid = _measure_id(report)
    div = str((report.get("text") or {}).get("div", ""))
    match = re.search(r"<b>(.*?)</b>", div)
    title = html.unescape(match.group(1)) if match else mid
    scoring = "cohort"
    for ext in report.get("extension", []) or []:
        if ext.get("url") == _MEASURE_SCORING_EXT:
            scoring = ext["valueCodeableConcept"]["coding"][0]["code"]
    notation = None
    imp = report.get("improvementNotation")
    if imp:
        notation = imp["coding"][0]["code"]
    return AnalysisInfo(
        id=mid,
        title=title,
        description=f"{title}, pooled over sites",
        scoring=scoring,
        improvement_notation=notation,
        version=version or "0.1.0",
    )


def _score_name(reports: Sequence[Mapping[str, Any]]) -> str | None:
    """The statistic a site reports as ``measureScore`` (the first statistic with the score's value)."""
    from fhir_pts.outputs.measure_report import EXT_STATISTIC

    for r in reports:
        group = (r.get("group") or [{}])[0]
        score = (group.get("measureScore") or {}).get("value")
        if score is None:
            continue
        for ext in group.get("extension", []) or []:
            if ext.get("url") != EXT_STATISTIC:
                continue
            parts = {
                sub["url"]: next((v for k, v in sub.items() if k.startswith("value")), None) for sub in ext["extension"]
            }
            if parts.get("value") == score:
                return str(parts["name"])
    return None


def _pool_measure(mid: str, reports: Sequence[Mapping[str, Any]]) -> PooledMeasure:
    first = reports[0]
    info = _info(first)
    ctx = _context(first)
    starts = [r.get("period", {}).get("start") for r in reports if r.get("period", {}).get("start")]
    ends = [r.get("period", {}).get("end") for r in reports if r.get("period", {}).get("end")]
    period = (min(starts) if starts else None, max(ends) if ends else None)
    populations: dict[str, int] = {}
    for r in reports:
        for pop in (r.get("group") or [{}])[0].get("population", []) or []:
            code = pop["code"]["coding"][0]["code"]
            populations[code] = populations.get(code, 0) + int(pop.get("count") or 0)
    populations_exact = all(
        "count" in pop for r in reports for pop in (r.get("group") or [{}])[0].get("population", []) or []
    )
    site_aggs = [_aggregates(r) for r in reports]
    measure = PooledMeasure(
        info=info,
        parameters=json.loads(ctx[0]) if ctx else {},
        windows=json.loads(ctx[1]) if ctx else {},
        statistics=[],
        populations=populations,
        populations_exact=populations_exact,
        curves={},
        aggregates=[],
        site_aggregates=site_aggs,
        period=period,
        score=None,
    )
    contexts = [_context(r) for r in reports]
    measure.site_min_cell_counts = [c[2] for c in contexts if c is not None]
    measure.site_distributions_shared = [c[3] for c in contexts if c is not None]
    if ctx is None or not site_aggs[0]:
        measure.poolable = False
        measure.notes.append(f"{mid}: the sites shared no aggregates for this measure (a plugin without them)")
        return measure
    by_name: dict[str, tuple[Aggregate, bool]] = {}
    for i, agg in enumerate(site_aggs[0]):
        parts = [aggs[i] for aggs in site_aggs]
        try:
            by_name[agg.name] = merge(parts)
        except MergeError as exc:
            raise PoolingError(f"measure {mid}: {exc}") from None
    for i, agg in enumerate(site_aggs[0]):
        merged, exact = by_name[agg.name]
        parts = [aggs[i] for aggs in site_aggs]
        stats_, curves = pooled_statistics(merged, exact, parts, by_name)
        measure.statistics.extend(stats_)
        measure.curves.update(curves)
        measure.aggregates.append(merged)
    measure.score = _score_name(reports)
    inexact = [p.statistic.name for p in measure.statistics if not p.exact]
    measure.notes.append(f"pooled over {len(reports)} site(s)")
    if inexact:
        measure.notes.append(f"not exact (see the report): {', '.join(inexact)}")
    return measure


def pool_sites(sites: Sequence[SiteReport]) -> PoolResult:
    """Check and pool the sites (:class:`PoolingError` when they cannot be pooled)."""
    check_sites(sites)
    measures = [_pool_measure(mid, [s.reports[mid] for s in sites]) for mid in sites[0].reports]
    return PoolResult(sites=list(sites), measures=measures)


#: Files ``fhir-pts pool`` writes, in order.
POOLED_FILES: tuple[str, ...] = ("results.csv", "measure-reports.json", "report.html")


def write_pooled(result: PoolResult, out_dir: Path | str, *, report: bool = True) -> dict[str, Path]:
    """Write ``results.csv``, ``measure-reports.json`` and ``report.html`` of a pool, all or nothing."""
    import datetime as dt

    from fhir_pts.atomic import write_all_atomically
    from fhir_pts.outputs.pooled import pooled_bundle_json_bytes, pooled_results_csv_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now(dt.UTC)
    contents = {
        out / "results.csv": pooled_results_csv_bytes(result),
        out / "measure-reports.json": pooled_bundle_json_bytes(result, date=date),
    }
    if report:
        from fhir_pts.outputs.pooled_report import pooled_report_html

        contents[out / "report.html"] = pooled_report_html(result, date=date).encode("utf-8")
    write_all_atomically(contents)
    return {p.name: p for p in contents}


def pool_paths(paths: Sequence[Path | str]) -> PoolResult:
    """Read each site (a ``measure-reports.json`` or a run's output folder) and pool them."""
    sites = [read_site(p) for p in paths]
    seen: dict[str, int] = {}
    for i, site in enumerate(sites):  # two folders of the same name: name the site by its path instead
        if site.label in seen:
            sites[i] = SiteReport(site.source, site.source, site.bundle_id, site.reports, site.failed)
        seen[sites[i].label] = i
    return pool_sites(sites)
