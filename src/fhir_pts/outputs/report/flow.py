"""The patient flow (STROBE/CONSORT style): how many patients reach each stage, and why the others do not."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import pandas as pd

from fhir_pts.analyses.result import AnalysisOutcome
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.figures import FlowStage
from fhir_pts.outputs.report.formatting import NA, fmt_num, signed

_QUOTED_VALUE = re.compile(r"""(?<!expected )(?:'[^']*'|"[^"]*")""")


def generic_reason(reason: str) -> str:
    """A problem reason with the offending value elided: ``'1970-13' is not a full date`` → ``'…' is not …``.

    Values quoted in reasons may be identifying (a birth date, a name in a free-text field) and make every
    reason unique; the report groups by the elided text (``problems.csv`` keeps the full one). What follows
    ``expected`` is kept: it names what the contract wants, not patient data.
    """
    return _QUOTED_VALUE.sub("'…'", reason)



def patient_flow(cohort: Cohort, outcomes: Sequence[AnalysisOutcome]) -> list[FlowStage]:
    """The stages of the patient-flow diagram, with the reasons patients are not carried to the next stage.

    Counts come from ``cohort.flow`` (``patients_in_data``, ``with_index_procedure``) where the cohort builder
    recorded them, otherwise from ``cohort.patients``; the regression stage uses the ``n`` statistic of the
    regression outcomes.
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
    skipped = Counter(generic_reason(pr.reason) for pr in cohort.problems if pr.severity == "skipped")
    stage1_excl = []
    if in_data is not None:
        stage1_excl.append(f"No index stenting procedure: {in_data - with_index}")
    orphans = cohort.flow.get("facts_without_patient")
    if orphans:
        stage1_excl.append(f"Records referring to no known patient: {orphans}")
    if skipped:
        top = ", ".join(f"{reason} ({c})" for reason, c in skipped.most_common(3))
        more = " …" if len(skipped) > 3 else ""
        stage1_excl.append(f"Input records skipped (records, not patients): {sum(skipped.values())} — {top}{more}")
    tech = col("technical_success")
    success = int((tech == True).fillna(False).sum())  # noqa: E712
    failure = int((tech == False).fillna(False).sum())  # noqa: E712
    unknown = int(tech.isna().sum())
    bv, bc = has("baseline_villalta"), has("baseline_civiq20")
    pv = bv & has("followup_villalta")
    pc = bc & has("followup_civiq20")
    stages = [
        FlowStage("Patients in the data", NA if in_data is None else str(in_data), tuple(stage1_excl)),
        FlowStage(
            "With an index stenting procedure (all patency analyses)",
            str(with_index),
            (
                f"Technical outcome: success {success}, failure {failure}, not recorded {unknown}",
                "(all kept in the patency analyses)",
            ),
        ),
        FlowStage(
            f"With a baseline score (day {signed(w.baseline_start)} to {signed(w.baseline_end)})",
            f"Villalta {int(bv.sum())} · CIVIQ-20 {int(bc.sum())}",
            (f"No scorable baseline: Villalta {n - int(bv.sum())}, CIVIQ-20 {n - int(bc.sum())}",),
        ),
        FlowStage(
            f"With a 3-month score (day {w.followup_start} to {w.followup_end}; complete pairs)",
            f"Villalta {int(pv.sum())} · CIVIQ-20 {int(pc.sum())}",
            (f"No scorable 3-month score: Villalta {int(bv.sum() - pv.sum())}, CIVIQ-20 {int(bc.sum() - pc.sum())}",),
        ),
    ]
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
    excl = []
    for title, reg_n, pairs in reg_counts:
        if reg_n is None:
            excl.append(f"{title}: regression {NA}")
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
        excl.append(f"{title}: {dropped} missing a covariate" + (f" ({', '.join(missing)})" if missing else ""))
    stages.append(
        FlowStage(
            "In the regression (complete cases)",
            " · ".join(f"{t} {NA if r is None else fmt_num(r)}" for t, r, _ in reg_counts),
            tuple(excl),
        )
    )
    return stages
