"""The outputs of ``fhir-pts pool``: ``results.csv`` (with an ``exact`` column) and ``measure-reports.json``.

The pooled MeasureReports are built by the very code of a run (:func:`build_measure_report`), one per measure,
each with a contained ``Provenance`` listing the sites pooled (their Bundle ids and files) and the merged
aggregates, so that pooled results can be pooled again. No patient-level data: only what the sites shared.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from fhir_pts import __version__
from fhir_pts.cohort.model import Cohort, TimePointWindows, empty_patients_frame
from fhir_pts.outputs.aggregates import SharingPolicy
from fhir_pts.outputs.measure_report import _format_date, build_measure_report
from fhir_pts.outputs.tables import RESULTS_COLUMNS, _csv_bytes, results_rows
from fhir_pts.pooling.result import PooledMeasure, PoolResult, SiteReport

#: Columns of the pooled ``results.csv``: those of a run, then ``exact`` (``true`` / ``false``).
POOLED_RESULTS_COLUMNS: tuple[str, ...] = (*RESULTS_COLUMNS, "exact")
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def pooled_results_csv_bytes(result: PoolResult) -> bytes:
    """``results.csv`` of a pool: the run's columns and names, plus ``exact`` for every row."""
    rows: list[list[str]] = []
    for measure in result.measures:
        base = results_rows([measure.outcome()])
        for row, pooled in zip(base, measure.statistics, strict=True):
            rows.append([*(row[c] for c in RESULTS_COLUMNS), "true" if pooled.exact else "false"])
    return _csv_bytes(POOLED_RESULTS_COLUMNS, rows)


def _pseudo_cohort(measure: PooledMeasure) -> Cohort:
    """A patient-free cohort carrying what a MeasureReport reads from one: its period and windows."""
    start, end = measure.period
    fields = TimePointWindows.__dataclass_fields__
    windows = TimePointWindows(**{k: int(v) for k, v in measure.windows.items() if k in fields})
    return Cohort(
        patients=empty_patients_frame(),
        period_start=dt.date.fromisoformat(start) if start else None,
        period_end=dt.date.fromisoformat(end) if end else None,
        windows=windows,
    )


def site_provenance(sites: Sequence[SiteReport], recorded: str) -> dict[str, Any]:
    """A Provenance (contained in a pooled report, ``target`` = the report) naming every site pooled."""
    entities = []
    for site in sites:
        what: dict[str, Any] = {"display": f"site {site.label}: {site.source or 'measure-reports.json'}"}
        if site.bundle_id:
            what["identifier"] = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{site.bundle_id}"}
        entities.append({"role": "source", "what": what})
    return {
        "resourceType": "Provenance",
        "id": "sites",
        "target": [{"reference": "#"}],
        "recorded": recorded,
        "agent": [
            {
                "type": {"coding": [{"system": PROVENANCE_PARTICIPANT, "code": "assembler"}]},
                "who": {"display": f"fhir-pts pool {__version__}"},
            }
        ],
        "entity": entities,
    }


def pooled_bundle(result: PoolResult, *, date: dt.datetime | None = None) -> dict[str, Any]:
    """``measure-reports.json`` of a pool: one MeasureReport per measure, with the sites in its provenance."""
    stamp = _format_date(date if date is not None else dt.datetime.now(dt.UTC))
    entries = []
    for measure in result.measures:
        rid = str(uuid.uuid4())
        policy = SharingPolicy(
            min_cell_count=max((m for m in measure.site_min_cell_counts), default=0), share_distributions=True
        )
        report = build_measure_report(
            measure.outcome(), _pseudo_cohort(measure), date=stamp, report_id=rid, sharing=policy
        )
        report["contained"] = [site_provenance(result.sites, stamp)]
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": report})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection"}
    bundle["timestamp"] = stamp
    bundle["entry"] = entries
    return bundle


def pooled_bundle_json_bytes(result: PoolResult, *, date: dt.datetime | None = None) -> bytes:
    """The pooled Bundle as bytes, validated with ``fhir.resources.R4B`` first (as a run's)."""
    from fhir.resources.R4B.bundle import Bundle

    bundle = pooled_bundle(result, date=date)
    Bundle.model_validate(bundle)
    return orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
