"""The report a clinician reads: ``report.html``, one self-contained file, and its figures.

:func:`write_report` writes ``out_dir/report.html`` (styles inline, figures embedded as ``data:`` SVG, no
script, nothing loaded from the network), the figures as SVG, PNG (300 dpi) and PDF under ``out_dir/figures/``
and every table as CSV and DOCX under ``out_dir/tables/`` (linked from the page), with ``methods.txt``. Every
file is written atomically (temp file + ``os.replace``).

The parts:

- :mod:`~fhir_pts.outputs.report.context` — the context builder: every number and text, section by section;
- :mod:`~fhir_pts.outputs.report.flow` — the patient flow (stages, reasons);
- :mod:`~fhir_pts.outputs.report.provenance` — input fingerprints, versions, :class:`RunInfo`;
- :mod:`~fhir_pts.outputs.report.pseudonyms` — patient ids as salted pseudonyms;
- :mod:`~fhir_pts.outputs.report.formatting` — numbers as a paper prints them;
- :mod:`~fhir_pts.outputs.report.downloads` — every named table as ``tables/<name>.csv`` and ``.docx``;
- ``templates/`` — the Jinja2 templates (HTML autoescaped), ``report.css`` and ``methods.txt.j2`` (the
  generated methods paragraph, also written to ``tables/methods.txt``).

No names are ever shown; patient ids appear only in the collapsed patient-level lists, replaced by salted
short SHA-256 pseudonyms when ``hash_patient_ids=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import jinja2

from fhir_pts.analyses.api import AnalysisOutcome
from fhir_pts.atomic import atomic_write_bytes
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.report.context import build_context
from fhir_pts.outputs.report.flow import generic_reason, patient_flow
from fhir_pts.outputs.report.formatting import fmt_num, fmt_p
from fhir_pts.outputs.report.provenance import RunInfo, default_versions, fingerprint_inputs
from fhir_pts.outputs.report.pseudonyms import pseudonymise

__all__ = [
    "RunInfo",
    "comparison_table_html",
    "default_versions",
    "environment",
    "fingerprint_inputs",
    "fmt_num",
    "fmt_p",
    "generic_reason",
    "patient_flow",
    "pseudonymise",
    "write_report",
]


@cache
def environment() -> jinja2.Environment:
    """The report's Jinja2 environment: templates from this package, HTML autoescaped, undefined is an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("fhir_pts.outputs.report", "templates"),
        # HTML templates are autoescaped; the plain-text methods paragraph (methods.txt.j2) is not
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html"), disabled_extensions=("txt.j2",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def comparison_table_html(rows: Sequence[object]) -> str:
    """The ``demo`` comparison (rows of :class:`~fhir_pts.outputs.abstract_comparison.ComparisonRow`) as HTML.

    Pass the result as ``comparison_html`` to :func:`write_report`. Figures that differ are marked in red,
    those that agree in green; the notes (e.g. the abstract's own inconsistencies) are kept.
    """
    differ = sum(1 for r in rows if getattr(r, "check", "") == "DIFFERS")
    missing = sum(1 for r in rows if getattr(r, "check", "") == "n/a")
    return environment().get_template("comparison.html.j2").render(
        rows=list(rows), differ=differ, missing=missing, agree=len(rows) - differ - missing
    )


def render_report(
    out_dir: Path,
    cohort: Cohort,
    outcomes: Sequence[AnalysisOutcome],
    run_info: RunInfo,
    *,
    comparison_html: str | None = None,
    hash_patient_ids: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> str:
    """The report's HTML; the figures (``out_dir/figures/``), the tables and the methods paragraph
    (``out_dir/tables/``) are written while it is built."""
    context, figures = build_context(
        cohort,
        outcomes,
        run_info,
        Path(out_dir) / "figures",
        comparison_html=comparison_html,
        hash_patient_ids=hash_patient_ids,
        on_step=on_step,
    )
    from fhir_pts.outputs.report.downloads import write_tables

    with figures:  # rendering in worker processes while the tables are written here
        tables_dir = Path(out_dir) / "tables"
        started = run_info.started.isoformat(timespec="seconds")
        note = f"fhir-pts {run_info.versions.get('fhir-pts', '')}, run started {started}"
        write_tables(tables_dir, context["tables"], note)
        atomic_write_bytes(tables_dir / "methods.txt", context["methods"].encode("utf-8"))
        if on_step is not None:
            on_step("tables")
        figures.finish()  # written under figures/, their SVG embedded in the context
    return environment().get_template("report.html.j2").render(**context)


def write_report(
    out_dir: Path,
    cohort: Cohort,
    outcomes: list[AnalysisOutcome],
    run_info: RunInfo,
    *,
    comparison_html: str | None = None,
    hash_patient_ids: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` (one self-contained file) and ``out_dir/figures/*.svg|png``; return its path.

    ``comparison_html`` is an HTML fragment (trusted, from the caller, e.g. the ``demo`` comparison with the
    abstract) placed in its own section. With ``hash_patient_ids`` every patient id in the report is replaced
    by a salted short SHA-256 pseudonym (salt derived from the input fingerprints, so pseudonyms are stable
    for the same data). Every file is written atomically. ``on_step`` is called with the name of each figure
    and with ``report`` as they are written (progress).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_report(
        out_dir,
        cohort,
        outcomes,
        run_info,
        comparison_html=comparison_html,
        hash_patient_ids=hash_patient_ids,
        on_step=on_step,
    )
    path = out_dir / "report.html"
    atomic_write_bytes(path, text.encode("utf-8"))
    if on_step is not None:
        on_step("report")
    return path
