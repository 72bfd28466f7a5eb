"""Write the four run outputs of contract §4, complete or not at all (see ``docs/outputs.md``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from fhir_pts.analyses.api import AnalysisOutcome
from fhir_pts.atomic import write_all_atomically
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.aggregates import SharingPolicy
from fhir_pts.outputs.measure_report import build_bundle
from fhir_pts.outputs.tables import cohort_csv_bytes, problems_csv_bytes, results_csv_bytes

#: File names of the run outputs, in the order they are written.
OUTPUT_FILES: tuple[str, ...] = ("measure-reports.json", "results.csv", "cohort.csv", "problems.csv")


def bundle_json_bytes(
    outcomes: Sequence[AnalysisOutcome],
    cohort: Cohort,
    *,
    date: dt.datetime | None = None,
    sharing: SharingPolicy | None = None,
    bundle: dict[str, Any] | None = None,
) -> bytes:
    """``measure-reports.json`` as bytes (UTF-8, 2-space indent, trailing newline): ``bundle`` when given (as
    :func:`~fhir_pts.outputs.measure_report.build_bundle` built it), else built here.

    The Bundle is validated with ``fhir.resources.R4B`` before it is written (a few dozen resources, so the
    cost is small): a run never writes FHIR that a consumer cannot parse — a failure here is a bug of ours.
    """
    from fhir.resources.R4B.bundle import Bundle

    if bundle is None:
        bundle = build_bundle(outcomes, cohort, date=date, sharing=sharing)
    Bundle.model_validate(bundle)
    return orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def write_outputs(
    out_dir: Path,
    cohort: Cohort,
    outcomes: list[AnalysisOutcome],
    *,
    date: dt.datetime | None = None,
    sharing: SharingPolicy | None = None,
    bundle: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``measure-reports.json``, ``results.csv``, ``cohort.csv`` and ``problems.csv`` into ``out_dir``.

    Parameters
    ----------
    out_dir: the output folder (created with its parents if needed).
    cohort: the analysed cohort (``cohort.csv``, ``problems.csv`` from ``cohort.problems``, report period).
    outcomes: the analyses as run (failed ones included: an ``error`` MeasureReport, no CSV rows).
    date: the MeasureReports' date (default: now, UTC).
    sharing: minimum cell count and distributions of the shared aggregates in ``measure-reports.json``
        (``docs/pooling.md``); ``results.csv`` is never suppressed.
    bundle: ``measure-reports.json`` already built (then ``date`` and ``sharing`` are not used).

    Returns
    -------
    file name -> path written. Every file is rendered in memory first and all are moved into place only
    once all are written, so a failure leaves the previous files (if any) untouched.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        out_dir / "measure-reports.json": bundle_json_bytes(
            outcomes, cohort, date=date, sharing=sharing, bundle=bundle
        ),
        out_dir / "results.csv": results_csv_bytes(outcomes),
        out_dir / "cohort.csv": cohort_csv_bytes(cohort),
        out_dir / "problems.csv": problems_csv_bytes(cohort.problems),
    }
    write_all_atomically(contents)
    return {path.name: path for path in contents}
