"""The patient flow (STROBE/CONSORT style): how many patients reach each stage, and why the others do not;
:func:`flow_section` is the report's section (diagram and table)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from fhir_pts.analyses.api import AnalysisOutcome
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.figures import FlowStage, flow_figure
from fhir_pts.outputs.report.formatting import NA, fmt_num, signed
from fhir_pts.outputs.report.values import Table

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext

_QUOTED_VALUE = re.compile(r"""(?<!expected )(?:'([^']*)'|"([^"]*)")""")
#: A FHIR code (a status, a unit): shown, not elided — it is the contract's vocabulary, not patient data.
_CODE = re.compile(r"[a-z][a-z0-9-]{0,31}")
#: Fields whose quoted values are FHIR codes a reader needs to see (which statuses were refused).
CODE_FIELDS: frozenset[str] = frozenset({"status"})


def generic_reason(reason: str, field: str | None = None) -> str:
    """A problem reason with the offending value elided: ``'1970-13' is not a full date`` → ``'…' is not …``.

    Values quoted in reasons may be identifying (a birth date, a name in a free-text field) and make every
    reason unique; the report groups by the elided text (``problems.csv`` keeps the full one). What follows
    ``expected`` is kept: it names what the contract wants, not patient data. In a field of :data:`CODE_FIELDS`
    (``status``) a quoted FHIR code is kept too (``status 'preliminary'``), so a reader sees which statuses
    were refused.
    """

    def elide(match: re.Match[str]) -> str:
        value = match.group(1) if match.group(1) is not None else match.group(2)
        if field in CODE_FIELDS and _CODE.fullmatch(value or ""):
            return match.group(0)
        return "'…'"

    return _QUOTED_VALUE.sub(elide, reason)


def patient_flow(cohort: Cohort, outcomes: Sequence[AnalysisOutcome]) -> list[FlowStage]:
    """The stages of the patient-flow diagram (CONSORT / STROBE style: patients only, never records).

    Each stage's ``excluded`` are the patients who do not reach the next stage, with why; they hang off the
    arrow to it. Counts come from ``cohort.flow`` (``patients_in_data``, ``with_index_procedure``) where the
    cohort builder recorded them, otherwise from ``cohort.patients``; the regression stage uses the ``n``
    statistic of the regression outcomes. Records (skipped resources, records without a patient) belong to the
    data-quality section, not here.
    """
    p = cohort.patients
    n = len(p)

    def col(name: str) -> pd.Series:
        return p[name] if name in p else pd.Series([pd.NA] * n, dtype="object")

    def has(name: str) -> pd.Series:
        return col(name).notna().to_numpy()

    w = cohort.windows
    in_data = cohort.flow.get("patients_in_data")
    with_index = cohort.flow.get("with_index_procedure", n)
    bv, bc = has("baseline_villalta"), has("baseline_civiq20")
    pv = bv & has("followup_villalta")
    pc = bc & has("followup_civiq20")
    by_id = {o.info.id: o for o in outcomes}
    reg_counts = []
    for measure, title, pairs in (
        ("villalta-gain-regression", "Villalta gain", pv),
        ("civiq20-gain-regression", "CIVIQ-20 gain", pc),
    ):
        outcome = by_id.get(measure)
        reg_n: float | None = None
        if outcome is not None and outcome.result is not None:
            try:
                reg_n = outcome.result.statistic("n").value
            except KeyError:
                reg_n = None
        reg_counts.append((title, reg_n, pairs))
    to_regression = []
    for title, reg_n, pairs in reg_counts:
        if reg_n is None:
            to_regression.append(f"{title}: regression {NA}")
            continue
        missing = []
        for column, label in (
            ("baseline_villalta", "baseline Villalta"),
            ("baseline_civiq20", "baseline CIVIQ-20"),
            ("age", "age"),
            ("stented_segments", "stented segments"),
        ):
            k = int((pairs & ~has(column)).sum())
            if k:
                missing.append(f"{label} {k}")
        dropped = int(pairs.sum()) - int(reg_n)
        to_regression.append(
            f"{title}: {dropped} missing a covariate" + (f" ({', '.join(missing)})" if missing else "")
        )
    no_index = () if in_data is None else (f"No index stenting procedure: {in_data - with_index}",)
    return [
        FlowStage("Patients in the data", NA if in_data is None else str(in_data), no_index),
        FlowStage(
            "With an index stenting procedure (all patency analyses)",
            str(with_index),
            (f"No scorable baseline score: Villalta {n - int(bv.sum())}, CIVIQ-20 {n - int(bc.sum())}",),
        ),
        FlowStage(
            f"With a baseline score (day {signed(w.baseline_start)} to {signed(w.baseline_end)})",
            f"Villalta {int(bv.sum())} · CIVIQ-20 {int(bc.sum())}",
            (f"No scorable 3-month score: Villalta {int(bv.sum() - pv.sum())}, CIVIQ-20 {int(bc.sum() - pc.sum())}",),
        ),
        FlowStage(
            f"With both scores (3 months: day {w.followup_start} to {w.followup_end}; score analyses)",
            f"Villalta {int(pv.sum())} · CIVIQ-20 {int(pc.sum())}",
            tuple(to_regression),
        ),
        FlowStage(
            "In the regression (complete cases)",
            " · ".join(f"{t} {NA if r is None else fmt_num(r)}" for t, r, _ in reg_counts),
        ),
    ]


def flow_section(ctx: ReportContext) -> dict[str, Any]:
    """The patient-flow section: the diagram, its table and the cohort's other flow counts."""
    stages = patient_flow(ctx.cohort, ctx.outcomes)
    fig = ctx.figure(
        flow_figure(stages),
        "patient-flow",
        "Patient flow (CONSORT/STROBE style; boxes count patients): from the patients in the data to each "
        "analysis. Patency analyses cover every patient with an index procedure; score analyses use complete "
        "baseline/3-month pairs; regressions use complete cases. The boxes on the right give, for each arrow, "
        "the patients who do not reach the next stage and why.",
        "Patient flow diagram",
    )
    rows = [[s.title, s.count, "; ".join(s.excluded) or "—"] for s in stages]
    extra = {k: v for k, v in ctx.cohort.flow.items() if k not in {"patients_in_data", "with_index_procedure"}}
    table = Table(["Stage", "Patients", "Not carried to the next stage (reason)"], rows, cls="text",
                  caption="Patient flow (patients, not records; skipped records are in the data-quality section)")
    return {
        "figure": fig,
        "table": ctx.named(table, "patient-flow"),
        "counts": Table(["Count", "Value"], [[k.replace("_", " "), str(v)] for k, v in extra.items()])
        if extra
        else None,
    }
