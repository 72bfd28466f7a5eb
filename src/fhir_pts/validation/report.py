"""The validation report: per-resource check failures, per-patient in/out of each analysis and why,
the summary; rendered as text, CSV rows or JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fhir_pts import codes
from fhir_pts.codes import CONTRACT_MEASURES
from fhir_pts.cohort.model import TimePointWindows
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Instrument
from fhir_pts.problems import Problem

Json = dict[str, Any]
Status = Literal["in", "out"]

#: The analyses of the contract (§4), in report order (a run with plugin instruments adds theirs after them).
ANALYSES: tuple[str, ...] = CONTRACT_MEASURES
#: The default regression terms (``fhir_pts.analyses.regression.DEFAULT_TERMS``).
REGRESSION_TERMS: tuple[str, ...] = ("baseline_villalta", "baseline_civiq20", "age", "stented_segments")
_QUESTIONNAIRE_NAME = {codes.VILLALTA_QUESTIONNAIRE: "villalta", codes.CIVIQ20_QUESTIONNAIRE: "civiq-20"}


def analyses_of(instruments: Sequence[Instrument]) -> tuple[str, ...]:
    """The analyses a validation explains: the contract's, then ``<id>`` and ``<id>-gain-regression`` of every
    other instrument (the plugins')."""
    extra = [m for i in instruments if i.id not in {b.id for b in BUILTIN_INSTRUMENTS} for m in i.measure_ids]
    return (*ANALYSES, *extra)

#: Columns of :meth:`ValidationReport.to_rows` (and of ``--format csv``).
ROW_COLUMNS: tuple[str, ...] = (
    "kind",
    "patient_id",
    "analysis",
    "status",
    "severity",
    "resource_type",
    "resource_id",
    "file",
    "line",
    "field",
    "reason",
)


@dataclass(frozen=True)
class ResourceViolation:
    """One failed check of one input resource (a profile of ``check_resource`` or a Questionnaire)."""

    resource_type: str
    resource_id: str | None
    patient_id: str | None
    check: str  # the profile name, or ``questionnaire:<name>``
    message: str
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class AnalysisStatus:
    """Whether a patient counts in one analysis, and why (or with what caveat)."""

    analysis: str
    status: Status
    reasons: tuple[str, ...] = ()


@dataclass
class PatientReport:
    """One patient: index date (``None``: no index procedure), per-analysis statuses, the patient's problems."""

    patient_id: str
    index_date: str | None
    statuses: list[AnalysisStatus]
    problems: list[Problem] = field(default_factory=list)
    violations: list[ResourceViolation] = field(default_factory=list)

    def status(self, analysis: str) -> AnalysisStatus:
        """The status of one analysis (:data:`ANALYSES`)."""
        for status in self.statuses:
            if status.analysis == analysis:
                return status
        raise KeyError(analysis)


_LINK_ID = "|".join(re.escape(i) for i in (*codes.VILLALTA_ITEMS, *codes.CIVIQ20_ITEMS[::-1]))
#: An unquoted list of questionnaire linkIds in a reason (``no answer for q3, q12 (2 of 20 ...)``).
_LINK_ID_LIST = re.compile(rf"(?<![\w'-])(?:{_LINK_ID})(?:, (?:{_LINK_ID}))*(?![\w-])")


def _reason_key(reason: str) -> str:
    """A problem reason with its variable parts (quoted ids, values, days; linkId lists) elided, for grouping."""
    return _LINK_ID_LIST.sub("…", re.sub(r"'[^']*'", "'…'", reason))


@dataclass
class ValidationReport:
    """What :func:`validate` found: per-patient rows, resource violations, problems, summary.

    ``problems``: every adapter / cohort problem; ``expected``: the subset that the contract prescribes and that
    is not a defect (day-0 completion imaging); ``patients``: every Patient of the data, in input order.
    """

    inputs: list[str]
    resources_read: int
    resources_checked: int
    patients: list[PatientReport]
    violations: list[ResourceViolation]
    problems: list[Problem]
    expected: list[Problem]
    flow: dict[str, int]
    windows: TimePointWindows
    #: The analyses explained per patient: :data:`ANALYSES`, then the plugins' instruments' measures.
    analyses: tuple[str, ...] = ANALYSES
    #: Installed analyses beyond those explained (plugins): ``(id, plugin, title)``. ``run`` runs them on every
    #: patient with an index procedure; their own population rules are not explained here.
    other_analyses: list[tuple[str, str, str]] = field(default_factory=list)

    # -- verdict ---------------------------------------------------------------------------------
    @property
    def defects(self) -> list[Problem]:
        """Problems that make the validation fail: skipped records other than the expected ones."""
        expected = {id(p) for p in self.expected}
        return [p for p in self.problems if p.severity == "skipped" and id(p) not in expected]

    @property
    def failed_resources(self) -> int:
        """Number of distinct resources that failed a check."""
        return len({(v.resource_type, v.resource_id, v.file, v.line) for v in self.violations})

    @property
    def ok(self) -> bool:
        return not self.violations and not self.defects

    @property
    def exit_status(self) -> int:
        """0 when nothing failed, 1 when a resource failed a check or a record was skipped."""
        return 0 if self.ok else 1

    def verdict(self) -> str:
        """The last line of every output: OK or FAILED, and why."""
        if self.ok:
            return (
                f"validate: OK: {self.resources_checked} resources checked, none failed; no record skipped "
                f"({len(self.problems) - len(self.expected)} warnings, {len(self.expected)} expected exclusions)"
            )
        return (
            f"validate: FAILED: {self.failed_resources} resources failed a check "
            f"({len(self.violations)} violations), {len(self.defects)} records skipped"
        )

    # -- summary ---------------------------------------------------------------------------------
    def analysis_counts(self) -> dict[str, dict[str, int]]:
        """Per analysis: patients ``in`` and ``out`` (out of every Patient in the data)."""
        counts = {a: {"in": 0, "out": 0} for a in self.analyses}
        for patient in self.patients:
            for status in patient.statuses:
                counts[status.analysis][status.status] += 1
        return counts

    def problem_counts(self) -> list[tuple[str, str, str, str, int]]:
        """``(severity, resource_type, field, reason with variable parts elided, count)``, most frequent first."""
        expected = {id(p) for p in self.expected}
        counter: Counter[tuple[str, str, str, str]] = Counter()
        for problem in self.problems:
            severity = "expected" if id(problem) in expected else problem.severity
            field_name = re.sub(r"\[[^\]]*\]", "[…]", problem.field)
            counter[(severity, problem.resource_type, field_name, _reason_key(problem.reason))] += 1
        return [(*key, n) for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]

    def violation_counts(self) -> list[tuple[str, str, int]]:
        """``(check, message with quoted parts elided, count)``, most frequent first."""
        counter: Counter[tuple[str, str]] = Counter((v.check, _reason_key(v.message)) for v in self.violations)
        return [(*key, n) for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]

    # -- renderings --------------------------------------------------------------------------------
    def render_text(self) -> str:
        """The human-readable report: per patient, then the resources not tied to a patient, then the summary."""
        out: list[str] = []
        add = out.append
        add(f"fhir-pts validate: {len(self.inputs)} input(s), {self.resources_read} resources read, "
            f"{self.resources_checked} checked against the profiles / Questionnaires")  # fmt: skip
        add(
            f"windows: baseline [{self.windows.baseline_start}, {self.windows.baseline_end}], 3 months "
            f"[{self.windows.followup_start}, {self.windows.followup_end}] closest to day "
            f"{self.windows.followup_target}"
        )
        add("")
        add("== Patients ==")
        expected = {id(p) for p in self.expected}
        for patient in self.patients:
            index = f"index {patient.index_date}" if patient.index_date else "no index procedure"
            add(f"patient {patient.patient_id} ({index})")
            included = [s.analysis for s in patient.statuses if s.status == "in"]
            shown = "every analysis" if len(included) == len(self.analyses) else ", ".join(included) or "-"
            add(f"  in:  {shown}")
            outs = [s for s in patient.statuses if s.status == "out"]
            if len(outs) == len(self.analyses) and len({s.reasons for s in outs}) == 1:
                add(f"  out: every analysis: {'; '.join(outs[0].reasons)}")
            else:
                for status in outs:
                    add(f"  out: {status.analysis}: {'; '.join(status.reasons)}")
            for status in patient.statuses:
                if status.status == "in" and status.reasons:
                    add(f"  note: {status.analysis}: {'; '.join(status.reasons)}")
            for violation in patient.violations:
                add(f"  check failed: {violation.resource_type}/{violation.resource_id}{_where(violation)}: "
                    f"{violation.message}")  # fmt: skip
            for problem in patient.problems:
                label = "expected" if id(problem) in expected else problem.severity
                add(f"  {label}: {_problem_text(problem)}")
        loose_problems = self._loose_problems()
        loose_violations = self._loose_violations()
        if loose_problems or loose_violations:
            add("")
            add("== Records not tied to a patient of the data ==")
            for violation in loose_violations:
                add(f"  check failed: {violation.resource_type}/{violation.resource_id}{_where(violation)}: "
                    f"{violation.message}")  # fmt: skip
            for problem in loose_problems:
                add(f"  {problem.severity}: {_problem_text(problem)}")
        add("")
        add("== Summary ==")
        add(f"patients in the data: {len(self.patients)}; with an index procedure: "
            f"{self.flow.get('with_index_procedure', 0)}")  # fmt: skip
        width = max(len(a) for a in self.analyses)
        for analysis, count in self.analysis_counts().items():
            add(f"  {analysis:<{width}}  in {count['in']:>6}  out {count['out']:>6}")
        for analysis, plugin, title in self.other_analyses:
            add(f"  {analysis:<{width}}  plugin {plugin} ({title}): run on the "
                f"{self.flow.get('with_index_procedure', 0)} patients with an index procedure; its own "
                "population rules are not explained by validate")  # fmt: skip
        if self.violations:
            add(f"check failures ({len(self.violations)} on {self.failed_resources} resources):")
            for check, message, n in self.violation_counts():
                add(f"  {n:>6}  {check}: {message}")
        if self.problems:
            add(f"problems ({len(self.problems)}):")
            for severity, resource_type, field_name, reason, n in self.problem_counts():
                add(f"  {n:>6}  {severity:<8} {resource_type}.{field_name}: {reason}")
        add(self.verdict())
        return "\n".join(out) + "\n"

    def _known_patients(self) -> set[str]:
        return {p.patient_id for p in self.patients}

    def _loose_problems(self) -> list[Problem]:
        known = self._known_patients()
        return [p for p in self.problems if p.patient_id not in known]

    def _loose_violations(self) -> list[ResourceViolation]:
        known = self._known_patients()
        return [v for v in self.violations if v.patient_id not in known]

    def to_rows(self) -> list[dict[str, Any]]:
        """Tidy rows (:data:`ROW_COLUMNS`): ``kind`` ``analysis`` (one per patient and analysis; ``reason`` =
        the reasons joined by ``; ``), ``violation`` (one per failed check), ``problem`` (one per problem,
        ``severity`` ``expected`` for the expected exclusions), and a last ``summary`` row with the verdict."""
        rows: list[dict[str, Any]] = []
        for patient in self.patients:
            for status in patient.statuses:
                rows.append(_row("analysis", patient_id=patient.patient_id, analysis=status.analysis,
                                 status=status.status, reason="; ".join(status.reasons)))  # fmt: skip
        for v in self.violations:
            rows.append(_row("violation", patient_id=v.patient_id, analysis=v.check, status="failed",
                             resource_type=v.resource_type, resource_id=v.resource_id, file=v.file, line=v.line,
                             reason=v.message))  # fmt: skip
        expected = {id(p) for p in self.expected}
        for p in self.problems:
            rows.append(_row("problem", patient_id=p.patient_id,
                             severity="expected" if id(p) in expected else p.severity,
                             resource_type=p.resource_type, resource_id=p.resource_id, file=p.file, line=p.line,
                             field=p.field, reason=p.reason))  # fmt: skip
        rows.append(_row("summary", status="ok" if self.ok else "failed", reason=self.verdict()))
        return rows

    def render_csv(self) -> str:
        """:meth:`to_rows` as CSV (header :data:`ROW_COLUMNS`)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=ROW_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.to_rows())
        return buffer.getvalue()

    def to_json(self) -> Json:
        """The report as a JSON-ready dict: ``summary``, ``patients``, ``violations``, ``problems``."""
        expected = {id(p) for p in self.expected}

        def problem(p: Problem) -> Json:
            row = p.as_row()
            row["severity"] = "expected" if id(p) in expected else p.severity
            return row

        return {
            "summary": {
                "ok": self.ok,
                "exit_status": self.exit_status,
                "verdict": self.verdict(),
                "inputs": self.inputs,
                "resources_read": self.resources_read,
                "resources_checked": self.resources_checked,
                "failed_resources": self.failed_resources,
                "skipped_records": len(self.defects),
                "flow": self.flow,
                "analyses": self.analysis_counts(),
                "other_analyses": [{"id": a, "plugin": p, "title": t} for a, p, t in self.other_analyses],
                "problems_by_reason": [
                    {"severity": s, "resource_type": t, "field": f, "reason": r, "count": n}
                    for s, t, f, r, n in self.problem_counts()
                ],
                "violations_by_reason": [{"check": c, "message": m, "count": n} for c, m, n in self.violation_counts()],
            },
            "patients": [
                {
                    "patient_id": p.patient_id,
                    "index_date": p.index_date,
                    "analyses": {s.analysis: {"status": s.status, "reasons": list(s.reasons)} for s in p.statuses},
                }
                for p in self.patients
            ],
            "violations": [asdict(v) for v in self.violations],
            "problems": [problem(p) for p in self.problems],
        }

    def render(self, fmt: str = "text") -> str:
        """The report in ``text``, ``csv`` or ``json``."""
        if fmt == "text":
            return self.render_text()
        if fmt == "csv":
            return self.render_csv()
        if fmt == "json":
            return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        raise ValueError(f"unknown format {fmt!r}: expected text, csv or json")


def _row(kind: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS, "")
    row["kind"] = kind
    row.update({k: ("" if v is None else v) for k, v in values.items()})
    return row


def _where(item: ResourceViolation | Problem) -> str:
    if item.file is None:
        return ""
    return f" ({Path(item.file).name}:{item.line})" if item.line is not None else f" ({Path(item.file).name})"


def _problem_text(problem: Problem) -> str:
    what = f"{problem.resource_type}/{problem.resource_id}" if problem.resource_id else problem.resource_type
    return f"{what}{_where(problem)} {problem.field}: {problem.reason}"
