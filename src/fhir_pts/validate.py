"""``fhir-pts validate``: check an input before a run and say, per patient, why they are in or out of each analysis.

The first thing an integration engineer runs. It reads the INPUT exactly as ``fhir-pts run`` does (files and
folders, or a server fetched into a temporary raw folder by the CLI), then:

1. **resource checks** — every input resource an input profile applies to is checked with
   :func:`fhir_pts.conformance.check_resource`; every Villalta / CIVIQ-20 QuestionnaireResponse is checked
   against the packaged Questionnaire with :func:`check_questionnaire_response`;
2. **contract problems** — the adapters' and the cohort builder's problems (``problems.csv`` of a run);
3. **per patient** — for each patient and each analysis of the contract (§4): in or out, and why (no index
   procedure, technical outcome unknown, baseline / 3-month score missing and which assessment was or was not
   there, regression covariates missing, patency censored at day 0 ...), derived from the cohort's columns, its
   flow, the facts and the problems of the patient's resources;
4. **summary** — counts per analysis in / out, problems and check failures grouped by reason.

:func:`validate` returns a :class:`ValidationReport` (``render_text()``, ``to_rows()``, ``to_json()``); its
``exit_status`` is 0 when nothing failed, 1 when a resource failed a check or a record was skipped. A
patency finding dated on day 0 (completion imaging) is not follow-up by contract §1: it is listed, but as
*expected*, not as a failure. No names or other PHI are printed: only resource ids, fields and reasons.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from fhir_pts import codes
from fhir_pts.adapters.common import VersionKey, codings, parse_day, reference_id
from fhir_pts.adapters.facts import FactSet
from fhir_pts.adapters.questionnaire_response import flatten_items, questionnaire_canonical
from fhir_pts.codes import CONTRACT_MEASURES
from fhir_pts.cohort.build import build_cohort
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.engines.local import collect_facts
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Instrument, InstrumentIndex
from fhir_pts.problems import Problem
from fhir_pts.sources.files import expand_inputs, iter_resources
from fhir_pts.sources.prefilter import CandidateFilter
from fhir_pts.vocabulary import Vocabulary

__all__ = [
    "ANALYSES",
    "ROW_COLUMNS",
    "AnalysisStatus",
    "PatientReport",
    "ResourceViolation",
    "ValidationReport",
    "check_questionnaire_response",
    "validate",
]

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


# --- QuestionnaireResponse against its Questionnaire ------------------------------------------------------------

#: The answer ``value[x]`` each Questionnaire item type takes (R4 ``Questionnaire.item.type``).
_ANSWER_KEY: dict[str, str] = {
    "boolean": "valueBoolean",
    "decimal": "valueDecimal",
    "integer": "valueInteger",
    "date": "valueDate",
    "dateTime": "valueDateTime",
    "time": "valueTime",
    "string": "valueString",
    "text": "valueString",
    "url": "valueUri",
    "choice": "valueCoding",
    "open-choice": "valueCoding",
    "attachment": "valueAttachment",
    "reference": "valueReference",
    "quantity": "valueQuantity",
}
_PYTHON_TYPE: dict[str, type | tuple[type, ...]] = {
    "valueBoolean": bool,
    "valueInteger": int,
    "valueDecimal": (int, float),
    "valueString": str,
    "valueDate": str,
    "valueDateTime": str,
    "valueTime": str,
    "valueUri": str,
    "valueCoding": dict,
    "valueAttachment": dict,
    "valueReference": dict,
    "valueQuantity": dict,
}


def _questionnaire_items(items: Any) -> Iterator[Json]:
    for item in items or ():
        if isinstance(item, dict):
            yield item
            yield from _questionnaire_items(item.get("item"))


def _value_of(answer: Json) -> tuple[str, Any] | None:
    for key, value in answer.items():
        if key.startswith("value"):
            return key, value
    return None


def _check_answer(link_id: str, item: Json, key: str, value: Any) -> str | None:
    """What is wrong with one answer ``{key: value}`` to Questionnaire item ``item`` (``None``: nothing)."""
    item_type = str(item.get("type"))
    expected = _ANSWER_KEY.get(item_type)
    options = [o for o in item.get("answerOption") or () if isinstance(o, dict)]
    option_codings = [o["valueCoding"] for o in options if isinstance(o.get("valueCoding"), dict)]
    option_codes = [str(c.get("code")) for c in option_codings]
    if item_type == "choice" and key == "valueInteger" and option_codes and all(c.isdigit() for c in option_codes):
        # Contract §1: a score item may be answered valueInteger instead of the option's code.
        if isinstance(value, bool) or not isinstance(value, int):
            return f"item {link_id!r}: valueInteger {value!r} is not an integer"
        if str(value) not in option_codes:
            return f"item {link_id!r}: valueInteger {value} is not an answer option ({', '.join(option_codes)})"
        return None
    if expected is None:
        return f"item {link_id!r}: item type {item_type!r} takes no answer, got {key}"
    if key != expected:
        return f"item {link_id!r}: {key} does not match item type {item_type!r} (expected {expected})"
    python_type = _PYTHON_TYPE.get(key)
    wrong_type = python_type is not None and (
        not isinstance(value, python_type) or (key in ("valueInteger", "valueDecimal") and isinstance(value, bool))
    )
    if wrong_type:
        return f"item {link_id!r}: {key} {value!r} is not a valid {key[5:].lower()}"
    if key == "valueCoding" and option_codings and item_type == "choice":
        system, code = value.get("system"), value.get("code")
        for option in option_codings:
            if str(option.get("code")) == str(code) and option.get("system") in (None, system):
                return None
        return f"item {link_id!r}: valueCoding code {code!r} is not an answer option ({', '.join(option_codes)})"
    return None


def check_questionnaire_response(qr: Json, questionnaire: Json, *, strict_groups: bool = False) -> list[str]:
    """Check a QuestionnaireResponse (a dict) against its Questionnaire (a dict); ``[]`` when it conforms.

    Checked: ``questionnaire`` names this Questionnaire (canonical, and its version when one is written);
    every answered linkId exists in the Questionnaire; an item is answered at most once and, unless it
    ``repeats``, with one answer; the answer type matches the item type (``choice`` → ``valueCoding`` whose
    code — and system when the option has one — is an ``answerOption``; ``boolean`` → ``valueBoolean``,
    ``integer`` → ``valueInteger`` ...); every ``required`` item is answered when the response is ``completed``
    or ``amended`` (FHIR enforces ``required`` only then).

    Accepted as the contract (§1) reads them: a ``valueInteger`` answering a ``choice`` item whose options are
    integer codes (it must be one of them); items nested in group items that the Questionnaire does not have
    (the adapters read items wherever they sit) — reported only with ``strict_groups=True``.

    :returns: one message per problem, each naming the item's linkId.
    """
    name = questionnaire.get("id") or questionnaire.get("name") or "questionnaire"
    problems: list[str] = []
    written = qr.get("questionnaire")
    canonical, _, version = str(written or "").partition("|")
    if canonical != questionnaire.get("url"):
        problems.append(f"questionnaire {written!r} is not {questionnaire.get('url')}")
    elif version and questionnaire.get("version") and version != questionnaire.get("version"):
        problems.append(f"questionnaire version {version!r} is not the packaged {questionnaire.get('version')!r}")
    definitions = {str(i.get("linkId")): i for i in _questionnaire_items(questionnaire.get("item"))}
    answered: set[str] = set()
    seen: Counter[str] = Counter()
    for _location, item in flatten_items(qr.get("item")):
        link_id = str(item.get("linkId"))
        answers = [a for a in item.get("answer") or () if isinstance(a, dict)]
        definition = definitions.get(link_id)
        if definition is None:
            if answers:
                problems.append(f"item {link_id!r}: linkId is not in Questionnaire {name}")
            elif strict_groups:
                problems.append(f"item {link_id!r}: group linkId is not in Questionnaire {name}")
            continue
        seen[link_id] += 1
        if seen[link_id] == 2:
            problems.append(f"item {link_id!r}: answered more than once")
        if len(answers) > 1 and not definition.get("repeats"):
            problems.append(f"item {link_id!r}: {len(answers)} answers, but the item does not repeat")
        for answer in answers:
            value = _value_of(answer)
            if value is None:
                continue
            answered.add(link_id)
            message = _check_answer(link_id, definition, *value)
            if message:
                problems.append(message)
    if qr.get("status") in ("completed", "amended"):
        for link_id, definition in definitions.items():
            if definition.get("required") and link_id not in answered:
                problems.append(f"item {link_id!r}: required but not answered")
    return problems


# --- the report ------------------------------------------------------------------------------------------------


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


# --- reading the raw resources (checks, and what the facts do not keep) ------------------------------------------


@dataclass(frozen=True)
class _Record:
    """What the per-patient explanations need to know of one resource beyond its facts."""

    resource_type: str
    resource_id: str
    patient_id: str | None
    instrument: str | None  # the instrument id (villalta, civiq20, a plugin's) of score resources
    day: dt.date | None
    file: str | None = None
    line: int | None = None


def _instrument(resource: Json, index: InstrumentIndex) -> str | None:
    kind = resource.get("resourceType")
    if kind == "QuestionnaireResponse":
        spec = index.questionnaires.get(questionnaire_canonical(resource.get("questionnaire")) or "")
        return spec.instrument if spec is not None else None
    if kind == "Observation":
        return next((index.totals[c].instrument for c in codings(resource.get("code")) if c in index.totals), None)
    return None


def _resource_day(resource: Json) -> dt.date | None:
    for key in ("performedDateTime", "effectiveDateTime", "authored"):
        if key in resource:
            return parse_day(resource.get(key))
    for key in ("performedPeriod", "effectivePeriod"):
        period = resource.get(key)
        if isinstance(period, dict):
            return parse_day(period.get("start"))
    return None


def _check(
    resource: Json, file: str, line: int, plugin_questionnaires: Mapping[str, Json] | None = None
) -> list[ResourceViolation] | None:
    """The check failures of one resource; ``None`` when no input profile or packaged Questionnaire applies.

    ``plugin_questionnaires``: canonical → the Questionnaire a plugin's instrument ships (checked the same way)."""
    from fhir_pts import conformance

    kind = str(resource.get("resourceType"))
    found: list[tuple[str, str]]
    if kind == "QuestionnaireResponse":
        canonical = questionnaire_canonical(resource.get("questionnaire")) or ""
        name = _QUESTIONNAIRE_NAME.get(canonical)
        shipped = (plugin_questionnaires or {}).get(canonical)
        if name is None and shipped is None:
            return None
        questionnaire = _packaged_questionnaire(name) if name is not None else shipped
        name = name or str(shipped.get("name") or shipped.get("id") or canonical)  # type: ignore[union-attr]
        found = [(f"questionnaire:{name}", m) for m in check_questionnaire_response(resource, questionnaire)]
    elif kind in ("Procedure", "Observation"):
        profile = conformance.infer_profile(resource)
        if profile is None:
            return None
        found = [(profile, m.removeprefix(f"{profile}: ")) for m in conformance.check_resource(resource, profile)]
    else:
        return None
    resource_id = resource.get("id")
    patient_id = reference_id(resource.get("subject"), "Patient")
    return [
        ResourceViolation(kind, str(resource_id) if resource_id else None, patient_id, check, message, file, line)
        for check, message in found
    ]


_QUESTIONNAIRES: dict[str, Json] = {}


def _packaged_questionnaire(name: str) -> Json:
    if name not in _QUESTIONNAIRES:
        from fhir_pts import conformance

        _QUESTIONNAIRES[name] = conformance.questionnaire(name)
    return _QUESTIONNAIRES[name]


def _scan(
    files: Sequence[Path],
    candidates: CandidateFilter,
    instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS,
) -> tuple[list[ResourceViolation], dict[str, _Record], int]:
    """Check every candidate resource of the files; remember the score resources and procedures by id."""
    index = InstrumentIndex.of(list(instruments))
    shipped = {
        canonical: dict(i.questionnaire)
        for i in instruments
        if i.questionnaire is not None and i.id not in {b.id for b in BUILTIN_INSTRUMENTS}
        for canonical in i.questionnaires
    }
    violations: list[ResourceViolation] = []
    records: dict[str, _Record] = {}
    versions: dict[str, VersionKey] = {}
    checked = 0
    for path in files:
        for raw in iter_resources(path, candidates=candidates, problems=[]):
            resource = raw.resource
            kind = resource.get("resourceType")
            if kind not in ("Procedure", "Observation", "QuestionnaireResponse"):
                continue
            found = _check(resource, raw.file, raw.line, shipped)
            if found is not None:
                checked += 1
                violations.extend(found)
            resource_id = resource.get("id")
            key = f"{kind}/{resource_id}"
            version = VersionKey.of(resource)
            if resource_id and (key not in versions or version.wins_over(versions[key])):
                versions[key] = version  # the copy the run uses (contract §1, duplicates)
                records[key] = _Record(
                    str(kind),
                    str(resource_id),
                    reference_id(resource.get("subject"), "Patient"),
                    _instrument(resource, index),
                    _resource_day(resource),
                    raw.file,
                    raw.line,
                )
    return violations, records, checked


# --- per patient ---------------------------------------------------------------------------------------------------


def _present(row: Mapping[str, Any], name: str) -> bool:
    value = row.get(name)
    return value is not None and not pd.isna(value)


@dataclass
class _Explainer:
    """Turns a cohort row (or its absence), the facts and the problems of a patient into per-analysis reasons."""

    facts: FactSet
    windows: TimePointWindows
    records: dict[str, _Record]
    problems_by_resource: dict[str, list[Problem]]
    unscorable: dict[str, list[Problem]]
    instruments: tuple[Instrument, ...] = BUILTIN_INSTRUMENTS
    _assessments: dict[str, list[Any]] = field(default_factory=dict, init=False)
    _records: dict[str, list[tuple[str, _Record]]] = field(default_factory=dict, init=False)
    _procedure_problems: dict[str, list[Problem]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        assessments: dict[str, list[Any]] = defaultdict(list)
        for fact in self.facts.assessments:
            assessments[fact.patient_id].append(fact)
        records: dict[str, list[tuple[str, _Record]]] = defaultdict(list)
        for key, record in self.records.items():
            if record.patient_id is not None:
                records[record.patient_id].append((key, record))
        procedure_problems: dict[str, list[Problem]] = defaultdict(list)
        for key, problems in self.problems_by_resource.items():
            if key.startswith("Procedure/"):
                for problem in problems:
                    if problem.patient_id is not None and problem.severity == "skipped":
                        procedure_problems[problem.patient_id].append(problem)
        self._assessments, self._records, self._procedure_problems = assessments, records, procedure_problems

    def statuses(self, patient_id: str, row: Mapping[str, Any] | None) -> list[AnalysisStatus]:
        if row is None:
            reason = self._no_index(patient_id)
            return [AnalysisStatus(a, "out", (reason,)) for a in analyses_of(self.instruments)]
        result: list[AnalysisStatus] = [AnalysisStatus("cohort", "in", self._cohort_notes(row))]
        if _present(row, "technical_success"):
            result.append(AnalysisStatus("technical-success", "in"))
        else:
            result.append(AnalysisStatus("technical-success", "out", (
                "technical outcome unknown: no index-day stenting Procedure has a recognised outcome "
                f"({row.get('index_procedure_ids')})",
            )))  # fmt: skip
        result.append(AnalysisStatus("major-complications", "in"))
        findings = int(row.get("patency_findings") or 0)
        imaging_note: tuple[str, ...] = () if findings else ("no follow-up imaging: imaging follow-up 0 days",)
        result.append(AnalysisStatus("imaging-follow-up", "in", imaging_note))
        for analysis, prefix in (
            ("primary-patency", "primary_patency"),
            ("primary-assisted-patency", "primary_assisted_patency"),
            ("secondary-patency", "secondary_patency"),
        ):
            result.append(AnalysisStatus(analysis, "in", self._patency_note(row, prefix, findings)))
        index_date = dt.date.fromisoformat(str(row["index_date"]))
        regressions = []
        for instrument in self.instruments:
            reasons: list[str] = []
            for when in ("baseline", "followup"):
                if not _present(row, f"{when}_{instrument.id}"):
                    reasons.append(self._score_missing(patient_id, index_date, instrument, when))
            result.append(AnalysisStatus(instrument.id, "out" if reasons else "in", tuple(reasons)))
            regressions.append((instrument.measure_ids[1], instrument.gain_column, instrument.terms))
        for analysis, outcome, terms in regressions:
            missing = [name for name in (outcome, *terms) if not _present(row, name)]
            if not missing:
                result.append(AnalysisStatus(analysis, "in"))
                continue
            reasons = [f"not a complete case: missing {', '.join(missing)}"]
            reasons.extend(self._covariate_reason(name) for name in missing)
            result.append(AnalysisStatus(analysis, "out", tuple(r for r in reasons if r)))
        order = {a: k for k, a in enumerate(analyses_of(self.instruments))}  # the contract's, then the plugins'
        return sorted(result, key=lambda s: order.get(s.analysis, len(order)))

    # -- reasons -----------------------------------------------------------------------------------
    def _no_index(self, patient_id: str) -> str:
        reason = "no index procedure: no completed Procedure coded as venous stenting"
        ignored = self._procedure_problems.get(patient_id, [])
        if ignored:
            reason += " (ignored: " + "; ".join(f"Procedure/{p.resource_id} {p.field}: {p.reason}" for p in ignored)
            reason += ")"
        return reason

    def _cohort_notes(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        notes = []
        if not _present(row, "age"):
            notes.append("age missing (no usable birthDate): left out of the age statistics")
        if not _present(row, "sex"):
            notes.append("sex missing (no Patient.gender)")
        return tuple(notes)

    @staticmethod
    def _patency_note(row: Mapping[str, Any], prefix: str, findings: int) -> tuple[str, ...]:
        if _present(row, "technical_success") and not bool(row["technical_success"]):
            return ("technical failure: patency lost at day 0",)
        if findings == 0:
            return ("no follow-up imaging: censored at day 0",)
        days = row.get(f"{prefix}_days")
        lost = row.get(f"{prefix}_lost")
        if _present(row, f"{prefix}_lost") and bool(lost):
            return (f"patency lost at day {days}",)
        return ()

    def _score_missing(self, patient_id: str, index_date: dt.date, instrument: Instrument, when: str) -> str:
        w = instrument.windows or self.windows
        start, end = (w.baseline_start, w.baseline_end) if when == "baseline" else (w.followup_start, w.followup_end)
        title = f"{'baseline' if when == 'baseline' else '3-month'} {instrument.title} missing"
        facts = [f for f in self._assessments.get(patient_id, []) if f.instrument == instrument.id]
        in_window = [f for f in facts if start <= (f.day - index_date).days <= end]
        details: list[str] = []
        for fact in in_window:
            key = f"{fact.resource_type}/{fact.resource_id}"
            why = self.unscorable.get(key, []) + [
                p for p in self.problems_by_resource.get(key, []) if p.severity == "skipped"
            ]
            text = "; ".join(dict.fromkeys(p.reason for p in why)) or "not scorable"
            details.append(f"{key} (day {(fact.day - index_date).days}) not scorable: {text}")
        if not in_window:
            days = sorted((f.day - index_date).days for f in facts)
            elsewhere = f" (assessments at day {', '.join(map(str, days))})" if days else ""
            details.append(f"no assessment in window [{start}, {end}]{elsewhere}")
        # Resources of this instrument that gave no fact at all (status, date, subject ...).
        fact_keys = {f"{f.resource_type}/{f.resource_id}" for f in facts}
        for key, record in self._records.get(patient_id, []):
            if record.instrument != instrument.id or key in fact_keys:
                continue
            skipped = [p for p in self.problems_by_resource.get(key, []) if p.severity == "skipped"]
            if skipped:
                day = f"day {(record.day - index_date).days}" if record.day else "no date"
                details.append(f"{key} ({day}) ignored: {'; '.join(p.reason for p in skipped)}")
        return f"{title}: {'; '.join(details)}"

    @staticmethod
    def _covariate_reason(name: str) -> str:
        """Why a regression variable is missing, in a few words (the score analyses' own rows say more)."""
        if name == "age":
            return "age: no usable birthDate"
        if name == "stented_segments":
            return "stented_segments: no recognisable bodySite or ICD-10-PCS body part on the index procedure"
        if name.startswith("baseline_"):
            return f"{name}: see {name.removeprefix('baseline_')}"
        return ""  # the gain: the score analysis says why


# --- entry point -------------------------------------------------------------------------------------------------


def _expected_exclusions(problems: Iterable[Problem], facts: FactSet, index_dates: Mapping[str, str]) -> list[Problem]:
    """The skipped records the contract itself prescribes: patency findings dated on day 0 (completion imaging)."""
    finding_day = {f.resource_id: f.day for f in facts.findings}
    found = []
    for problem in problems:
        if problem.resource_type != "Observation" or problem.severity != "skipped" or problem.patient_id is None:
            continue
        day = finding_day.get(problem.resource_id or "")
        index = index_dates.get(problem.patient_id)
        if day is not None and index is not None and day.isoformat() == index and problem.field.startswith("effective"):
            found.append(problem)
    return found


def validate(
    inputs: Sequence[Path | str],
    *,
    concept_maps: Sequence[Path | str] = (),
    windows: TimePointWindows | None = None,
    workers: int = 1,
    vocabulary: Vocabulary | None = None,
    instruments: Sequence[Instrument] | None = None,
) -> ValidationReport:
    """Validate FHIR input files / folders (as ``fhir-pts run`` reads them) and explain every patient.

    :param inputs: INPUT arguments: Bundle / NDJSON files or folders.
    :param concept_maps: ConceptMap files mapping site-local codes (``--concept-map``).
    :param windows: assessment windows (default: the contract's).
    :param workers: processes reading the input for the facts.
    :param vocabulary: the run's vocabulary when already built (then ``concept_maps`` is not read).
    :param instruments: the instruments read and explained (default: the installed ones, as ``fhir-pts run``).
    :raises InputError: an INPUT is missing or unusable (exit status 2 on the command line).
    """
    windows = windows or TimePointWindows()
    vocabulary = vocabulary if vocabulary is not None else Vocabulary.build(list(concept_maps))
    if instruments is None:
        from fhir_pts.plugin_manager import get_plugin_manager, instruments_of

        instruments = instruments_of(get_plugin_manager())
    vocabulary = vocabulary.with_instruments(instruments)
    files = expand_inputs(list(inputs))
    facts = collect_facts(files, vocabulary, workers=workers)
    cohort: Cohort = build_cohort(facts, windows, vocabulary.instruments)
    hosts = vocabulary.instrument_index.hosts()
    candidates = CandidateFilter.for_contract(vocabulary.source_codes, instrument_hosts=hosts)
    violations, records, checked = _scan(files, candidates, vocabulary.instruments)

    # The cohort's problems name resources but not where they were read: locate them (the copy the run used).
    for i, problem in enumerate(cohort.problems):
        record = records.get(f"{problem.resource_type}/{problem.resource_id}")
        if record is not None and problem.file is None:
            cohort.problems[i] = problem.located(record.file, record.line)
    problems = [*facts.problems, *cohort.problems]
    frame_rows = cohort.patients.to_dict("records")
    rows: dict[str, dict[str, Any]] = {str(r["patient_id"]): {str(k): v for k, v in r.items()} for r in frame_rows}
    index_dates = {pid: str(r["index_date"]) for pid, r in rows.items()}
    expected = _expected_exclusions(cohort.problems, facts, index_dates)

    by_resource: dict[str, list[Problem]] = defaultdict(list)
    for problem in facts.problems:
        if problem.resource_id:
            by_resource[f"{problem.resource_type}/{problem.resource_id}"].append(problem)
    unscorable: dict[str, list[Problem]] = defaultdict(list)
    for problem in cohort.problems:
        if problem.resource_id and problem.resource_type in ("QuestionnaireResponse", "Observation"):
            unscorable[f"{problem.resource_type}/{problem.resource_id}"].append(problem)
    explainer = _Explainer(facts, windows, records, by_resource, unscorable, vocabulary.instruments)

    problems_by_patient: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        if problem.patient_id is not None:
            problems_by_patient[problem.patient_id].append(problem)
    violations_by_patient: dict[str, list[ResourceViolation]] = defaultdict(list)
    for violation in violations:
        if violation.patient_id is not None:
            violations_by_patient[violation.patient_id].append(violation)

    patients = [
        PatientReport(
            patient_id,
            index_dates.get(patient_id),
            explainer.statuses(patient_id, rows.get(patient_id)),
            problems_by_patient.get(patient_id, []),
            violations_by_patient.get(patient_id, []),
        )
        for patient_id in facts.patients
    ]
    flow = dict(cohort.flow)
    flow.setdefault("resources_read", facts.resources_read)
    return ValidationReport(
        inputs=[str(p) for p in inputs],
        resources_read=facts.resources_read,
        resources_checked=checked,
        patients=patients,
        violations=violations,
        problems=problems,
        expected=expected,
        flow=flow,
        windows=windows,
        analyses=analyses_of(vocabulary.instruments),
    )


def run_validate(
    inputs: Sequence[Path],
    server_config: Any | None,
    concept_maps: Sequence[Path | str],
    windows: TimePointWindows,
    workers: int,
    fmt: str,
    out: Path | None,
    progress: Any = None,
) -> int:
    """The ``fhir-pts validate`` command: read files (or fetch the server into a temporary raw folder), validate,
    write the report to ``out`` (or stdout) and return the exit status (0 ok, 1 failed). ``progress``: the
    server fetch's progress callback (:data:`fhir_pts.sources.server.search.ProgressCallback`).

    The verdict is the last line of the text report; with ``--out`` or another format it is also printed to
    stderr. A server that cannot be reached or refuses raises :class:`~fhir_pts.sources.files.InputError`
    (unusable input, exit status 2).
    """
    import sys
    import tempfile

    from fhir_pts.sources.files import InputError

    with tempfile.TemporaryDirectory(prefix="fhir-pts-validate-") as tmp:
        files: list[Path | str] = list(inputs)
        fetch_problems: list[Problem] = []
        if server_config is not None:
            from fhir_pts.sources.server import ServerError, ServerSource
            from fhir_pts.sources.server.search import no_progress

            try:
                from fhir_pts.plugin_manager import get_plugin_manager, instruments_of

                source = ServerSource.open(server_config)  # asked for the installed instruments' codes too
                vocabulary = source.vocabulary(concept_maps).with_instruments(instruments_of(get_plugin_manager()))
                fetched = source.fetch(Path(tmp) / "raw", vocabulary, progress or no_progress)
            except ServerError as error:
                raise InputError(f"server {server_config.base_url}: {error}") from error
            files, fetch_problems = list(fetched.paths), fetched.problems
            if not files:
                raise InputError(f"server {server_config.base_url}: nothing fetched")
        else:
            vocabulary = Vocabulary.build(list(concept_maps))
        report = validate(files, windows=windows, workers=workers, vocabulary=vocabulary)
        report.problems[:0] = fetch_problems
        if server_config is not None:
            report.inputs = [server_config.base_url]
    text = report.render(fmt)
    if out is None:
        sys.stdout.write(text)
        if fmt != "text":
            print(report.verdict(), file=sys.stderr)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(out)
        print(report.verdict(), file=sys.stderr)
    return report.exit_status
