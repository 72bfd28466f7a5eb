"""FHIR R4 ``MeasureReport`` s of the analyses, and the ``Bundle`` that holds them (``measure-reports.json``).

Each successful analysis becomes one summary MeasureReport (DEQM summary profile shape, see
``docs/outputs.md``): ``status`` ``complete``, ``type`` ``summary``, ``measure`` = ``{base}/Measure/<id>|<version>``,
``period`` = the cohort's period, ``date`` (seconds, UTC), ``improvementNotation`` where the analysis has one,
and one ``group`` with its ``code``, the population counts and the ``measureScore`` (a Quantity). Every
statistic (value, CI, p-value, n) is also carried, losslessly, by the project extensions below, modelled on
R5 ``Evidence.statistic``; survival curves by a ``survival-curve`` extension.

A failed analysis becomes a MeasureReport with ``status`` ``error`` (R4: "an error occurred attempting to
generate the report"), no ``group``, and the error message in its narrative — so the Bundle always has one
report per analysis run. Such a report is, by design, not a ``pts-measure-report`` (which is ``complete``).

Extensions: :data:`EXT_STATISTIC`, :data:`EXT_SURVIVAL_CURVE` and :data:`EXT_CONCEPT_MAP_USED` (one per
ConceptMap the run read site-local codes with; the project's, defined in the packaged FHIR package,
``fhir_pts/data/profiles``) and DEQM's measure-scoring extension :data:`EXT_SCORING`. The
plugin that ran the analysis, its notes (e.g. exclusions) and, for a failed analysis, the error message are
in the report's narrative (``MeasureReport.text``), which needs no extension.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import uuid
from collections.abc import Iterable
from typing import Any

from fhir_pts.analyses.api import AnalysisOutcome, CurvePoint, Statistic
from fhir_pts.codes import EXTENSION_BASE, MEASURE_POPULATION, MEASURE_SCORING, UCUM
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.aggregates import SharingPolicy, aggregate_extensions, pooling_context_extension
from fhir_pts.vocabulary import MapSource

#: One statistic of the analysis (complex; on ``MeasureReport.group``): ``name``, ``value``, ``unit``, ``ciLow``,
#: ``ciHigh``, ``ciLevel``, ``pValue``, ``sampleSize`` (packaged definition ``StructureDefinition-statistic``).
EXT_STATISTIC = f"{EXTENSION_BASE}/statistic"
#: A survival curve (complex; on ``MeasureReport.group``): ``name`` and one ``point`` per step, each with
#: ``time`` (months), ``estimate``, ``ciLow``, ``ciHigh``, ``atRisk`` (``StructureDefinition-survival-curve``).
EXT_SURVIVAL_CURVE = f"{EXTENSION_BASE}/survival-curve"
#: Results computed from incomplete data (``valueString``, one per data gap; on ``MeasureReport``): the source
#: could not provide a contract input (``StructureDefinition-data-incomplete``).
EXT_DATA_INCOMPLETE = f"{EXTENSION_BASE}/data-incomplete"
#: A ConceptMap the run read site-local codes with (on MeasureReport; one per map).
EXT_CONCEPT_MAP_USED = f"{EXTENSION_BASE}/concept-map-used"
#: DEQM's measure-scoring extension (``valueCodeableConcept`` from measure-scoring; on ``MeasureReport``).
EXT_SCORING = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-measureScoring"
IMPROVEMENT_NOTATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
#: Confidence level of every CI of the built-in analyses.
CI_LEVEL = 0.95


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _decimal(x: float) -> float | int:
    """A FHIR decimal: integral values as JSON integers (``42`` rather than ``42.0``)."""
    return int(x) if float(x).is_integer() and abs(x) < 2.0**53 else float(x)


def _sub(url: str, key: str, value: Any) -> dict[str, Any]:
    return {"url": url, key: value}


def statistic_extension(statistic: Statistic, ci_level: float = CI_LEVEL) -> dict[str, Any]:
    """The ``statistic`` extension of one statistic (missing parts are left out; ``value`` absent = None)."""
    parts: list[dict[str, Any]] = [_sub("name", "valueString", statistic.name)]
    for key, val in (("value", statistic.value), ("ciLow", statistic.ci_low), ("ciHigh", statistic.ci_high)):
        val = _finite(val)
        if val is not None:
            parts.append(_sub(key, "valueDecimal", _decimal(val)))
    if _finite(statistic.ci_low) is not None or _finite(statistic.ci_high) is not None:
        parts.append(_sub("ciLevel", "valueDecimal", ci_level))
    p = _finite(statistic.p_value)
    if p is not None:
        parts.append(_sub("pValue", "valueDecimal", _decimal(p)))
    if statistic.n is not None:
        parts.append(_sub("sampleSize", "valueInteger", int(statistic.n)))
    if statistic.unit:
        parts.append(_sub("unit", "valueCode", statistic.unit))
    return {"url": EXT_STATISTIC, "extension": parts}


def concept_map_extension(source: MapSource) -> dict[str, Any]:
    """The ``concept-map-used`` extension of one ConceptMap of the run (canonical, source, location, SHA-256)."""
    parts: list[dict[str, Any]] = []
    if source.canonical is not None:
        parts.append(_sub("canonical", "valueCanonical", source.canonical))
    parts.append(_sub("source", "valueCode", source.kind))
    parts.append(_sub("location", "valueString", source.location))
    if source.sha256 is not None:
        parts.append(_sub("sha256", "valueString", source.sha256))
    return {"url": EXT_CONCEPT_MAP_USED, "extension": parts}


def survival_curve_extension(name: str, points: Iterable[CurvePoint]) -> dict[str, Any]:
    """The ``survival-curve`` extension of one curve."""
    parts: list[dict[str, Any]] = [_sub("name", "valueString", name)]
    for pt in points:
        sub: list[dict[str, Any]] = [
            _sub("time", "valueDecimal", _decimal(pt.time_months)),
            _sub("estimate", "valueDecimal", _decimal(pt.estimate)),
        ]
        for key, val in (("ciLow", pt.ci_low), ("ciHigh", pt.ci_high)):
            val = _finite(val)
            if val is not None:
                sub.append(_sub(key, "valueDecimal", _decimal(val)))
        sub.append(_sub("atRisk", "valueInteger", int(pt.at_risk)))
        parts.append({"url": "point", "extension": sub})
    return {"url": EXT_SURVIVAL_CURVE, "extension": parts}


def _format_date(date: dt.datetime | dt.date | str | None) -> str:
    if date is None:
        date = dt.datetime.now(dt.UTC).replace(microsecond=0)
    if isinstance(date, dt.datetime):
        if date.tzinfo is None:
            date = date.replace(tzinfo=dt.UTC)
        return date.replace(microsecond=0).isoformat()
    if isinstance(date, dt.date):
        return date.isoformat()
    return str(date)


def _period(cohort: Cohort) -> dict[str, Any]:
    period: dict[str, Any] = {}
    if cohort.period_start is not None:
        period["start"] = cohort.period_start.isoformat()
    if cohort.period_end is not None:
        period["end"] = cohort.period_end.isoformat()
    if not period:  # an empty cohort has no period: say why instead of an (invalid) empty element
        period["extension"] = [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]
    return period


def _quantity(value: float, unit: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": _decimal(value)}
    if unit:
        q.update({"unit": unit, "system": UCUM, "code": unit})
    return q


def narrative(outcome: AnalysisOutcome, data_gaps: Iterable[str] = ()) -> str:
    """The XHTML narrative of a report: title, measure id, plugin, what data were missing, and the notes or
    the error message."""
    info = outcome.info
    lines = [
        f"<p><b>{html.escape(info.title)}</b> (measure <code>{html.escape(info.id)}</code>, "
        f"analysis plugin <code>{html.escape(outcome.plugin)}</code>)</p>"
    ]
    gaps = list(data_gaps)
    if gaps:
        lines.append("<p><b>Incomplete data</b>: computed without what the source could not provide:</p><ul>"
                     + "".join(f"<li>{html.escape(g)}</li>" for g in gaps) + "</ul>")
    if outcome.result is None:
        lines.append(f"<p>The analysis failed: {html.escape(outcome.error or 'unknown error')}</p>")
    elif outcome.result.notes:
        lines.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in outcome.result.notes) + "</ul>")
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{"".join(lines)}</div>'


def build_measure_report(
    outcome: AnalysisOutcome,
    cohort: Cohort,
    *,
    date: dt.datetime | dt.date | str | None = None,
    report_id: str | None = None,
    sharing: SharingPolicy | None = None,
) -> dict[str, Any]:
    """The R4 MeasureReport (as a JSON-ready dict) of one analysis outcome.

    Parameters
    ----------
    outcome: the analysis, its plugin and its result or error.
    cohort: the cohort it ran on (gives ``period``).
    date: the report date (default: now, UTC, to the second); a ``date`` gives day precision.
    report_id: ``MeasureReport.id`` (default: none).
    sharing: how the result's aggregates (sufficient statistics for pooling, ``docs/pooling.md``) are shared:
        minimum cell count and distributions (default :class:`SharingPolicy`: the disclosure default, no
        distributions).

    Returns
    -------
    A dict that parses with ``fhir.resources.R4B.measurereport.MeasureReport``.
    """
    info = outcome.info
    report: dict[str, Any] = {"resourceType": "MeasureReport"}
    if report_id is not None:
        report["id"] = report_id
    result = outcome.result
    report["text"] = {"status": "generated", "div": narrative(outcome, cohort.data_gaps)}
    report["extension"] = [
        {
            "url": EXT_SCORING,
            "valueCodeableConcept": {"coding": [{"system": MEASURE_SCORING, "code": info.scoring}]},
        },
        *({"url": EXT_DATA_INCOMPLETE, "valueString": gap} for gap in cohort.data_gaps),
        *(concept_map_extension(source) for source in cohort.concept_maps),
    ]
    report["status"] = "complete" if outcome.result is not None else "error"
    report["type"] = "summary"
    report["measure"] = info.measure_canonical
    report["date"] = _format_date(date)
    report["period"] = _period(cohort)
    if info.improvement_notation is not None:
        report["improvementNotation"] = {
            "coding": [{"system": IMPROVEMENT_NOTATION_SYSTEM, "code": info.improvement_notation}]
        }
    if result is None:
        return report
    if result.aggregates:
        from dataclasses import asdict

        from fhir_pts import __version__

        policy = sharing or SharingPolicy()
        report["extension"].append(
            pooling_context_extension(outcome.parameters, asdict(cohort.windows), __version__, policy)
        )
    group: dict[str, Any] = {"code": {"text": info.id}}
    group_ext = [statistic_extension(s) for s in result.statistics]
    group_ext.extend(survival_curve_extension(name, pts) for name, pts in result.curves.items())
    if result.aggregates:
        group_ext.extend(aggregate_extensions(result.aggregates, sharing or SharingPolicy()))
    if group_ext:
        group["extension"] = group_ext
    if result.populations:
        group["population"] = [
            {"code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}, "count": int(cnt)}
            for code, cnt in result.populations.items()
        ]
    if result.score is not None:
        score = result.statistic(result.score)
        value = _finite(score.value)
        if value is not None:
            group["measureScore"] = _quantity(value, score.unit)
    report["group"] = [group]
    if sharing is not None and sharing.min_cell_count > 1:
        # the file that leaves the site (fhir-pts run): small cells of the site's own figures are masked too
        from fhir_pts.outputs.suppression import suppress_report

        report, _ = suppress_report(report, sharing.min_cell_count)
    return report


def build_bundle(
    outcomes: Iterable[AnalysisOutcome],
    cohort: Cohort,
    *,
    date: dt.datetime | dt.date | str | None = None,
    sharing: SharingPolicy | None = None,
) -> dict[str, Any]:
    """A ``collection`` Bundle with one MeasureReport per outcome (``fullUrl`` ``urn:uuid:<id>``).

    Every report carries the same ``date`` (default: now, UTC); the Bundle's ``timestamp`` is that instant.
    """
    stamp = _format_date(date if date is not None else dt.datetime.now(dt.UTC))
    entries = []
    for outcome in outcomes:
        rid = str(uuid.uuid4())
        entries.append(
            {
                "fullUrl": f"urn:uuid:{rid}",
                "resource": build_measure_report(outcome, cohort, date=stamp, report_id=rid, sharing=sharing),
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection"}
    if "T" in stamp:
        bundle["timestamp"] = stamp
    bundle["entry"] = entries
    return bundle
