"""From the de-duplicated facts of a run to the analysable :class:`~fhir_pts.cohort.model.Cohort` (contract §1, §2).

:func:`build_cohort` is the only entry point. One pass groups the facts by patient, then each patient with an
index stenting procedure becomes one row of :data:`~fhir_pts.cohort.model.COHORT_COLUMNS`; the rows are built
as plain tuples and turned into one typed DataFrame at the end (no per-row pandas work), with the cyclic garbage
collector paused meanwhile, so 100,000 patients take seconds (``benchmarks/bench_cohort.py``).

Rules (each documented column by column in ``docs/cohort.md``):

- **Day 0** is the date of the patient's earliest stenting Procedure; every stenting Procedure of that same
  date belongs to the *index procedure*. Other procedures on day 0 (angioplasty, thrombectomy... not coded as
  stenting) belong neither to the index procedure nor to the reinterventions and are reported.
- **Segments**: union of the index procedures' ``bodySite`` segments, else of the index day's ICD-10-PCS
  body parts, side ignored; ``<NA>`` (not 0) when none is recognisable.
- **Technical success** over the index procedures: any failure → failure; else any success → success; else
  unknown (reported, ``<NA>``, left out of numerator and denominator).
- **Major complication** (0/1): an index procedure with a ``major-complication`` complication, or a serious
  AdverseEvent whose suspect entity is an index procedure.
- **Reinterventions**: the patient's procedures (stenting or reintervention codes) dated after day 0.
- **Patency findings**: those dated after day 0; earlier ones (including day-0 completion imaging) are not
  follow-up and are reported. Patency itself: :mod:`fhir_pts.cohort.patency`.
- **Age**: whole years at the index date, birthday-exact (a 29 February birthday is reached on 1 March in
  common years).
- **Scores**: :mod:`fhir_pts.cohort.scoring`, time points :mod:`fhir_pts.cohort.timepoints`;
  gain = baseline − 3 months.

Facts about a patient that has no ``Patient`` resource are reported and not used. :attr:`Cohort.problems`
holds the problems met *here*; those of the adapters stay in :attr:`FactSet.problems` (a run reports both).
"""

from __future__ import annotations

import datetime as dt
import gc
import operator
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fhir_pts.adapters.facts import (
    AdverseEventFact,
    FactSet,
    PatencyFindingFact,
    PatientFact,
    ProcedureFact,
    ScoreAssessmentFact,
)
from fhir_pts.codes import BELOW_INGUINAL_SEGMENTS, DAYS_PER_MONTH, SEGMENTS, VILLALTA_ITEMS
from fhir_pts.cohort.model import COHORT_COLUMNS, Cohort, TimePointWindows, empty_patients_frame
from fhir_pts.cohort.patency import Finding, Reintervention, derive_patency
from fhir_pts.cohort.scoring import (
    VILLALTA_TOTAL_MAX,
    VILLALTA_TOTAL_MIN,
    Civiq20Score,
    VillaltaClass,
    civiq20_from_total,
    score_civiq20,
    villalta_class,
    villalta_total,
)
from fhir_pts.cohort.timepoints import Candidate, choose_time_points
from fhir_pts.problems import Problem

#: The contract's default windows (baseline [−90, 0], 3 months closest to day 91 in [60, 150]).
DEFAULT_WINDOWS = TimePointWindows()

_SEGMENT_ORDER = {name: i for i, name in enumerate(SEGMENTS)}


@dataclass(slots=True)
class _PatientFacts:
    """The facts of one patient, each with its read order (position in the FactSet)."""

    procedures: list[ProcedureFact] = field(default_factory=list)
    findings: list[PatencyFindingFact] = field(default_factory=list)
    assessments: list[tuple[int, ScoreAssessmentFact]] = field(default_factory=list)
    adverse_events: list[AdverseEventFact] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _VillaltaScore:
    total: int
    klass: VillaltaClass | None
    ulcer: bool | None


def _problem(
    fact: ProcedureFact | PatencyFindingFact | ScoreAssessmentFact | AdverseEventFact | PatientFact,
    field_name: str,
    reason: str,
    severity: str = "skipped",
) -> Problem:
    return Problem(
        resource_type="Patient" if isinstance(fact, PatientFact) else fact.resource_type,
        resource_id=fact.resource_id,
        field=field_name,
        reason=reason,
        severity="warning" if severity == "warning" else "skipped",
        patient_id=fact.patient_id,
    )


def age_in_years(birth_date: dt.date, on: dt.date) -> int:
    """Age in whole years on date ``on`` (birthday-exact: the age increases on the birthday itself; a
    29 February birthday is reached on 1 March in common years)."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def _score_villalta(fact: ScoreAssessmentFact, problems: list[Problem]) -> _VillaltaScore | None:
    is_questionnaire = fact.resource_type == "QuestionnaireResponse"
    try:
        if is_questionnaire:
            items = dict(fact.items)
            total = villalta_total(items)
            if total is None:
                missing = [name for name in VILLALTA_ITEMS if items.get(name) is None]
                problems.append(
                    _problem(
                        fact,
                        "item",
                        f"Villalta items missing '{', '.join(missing)}': no total (all 11 items 0-3 are needed)",
                    )
                )
                return None
        else:
            written = fact.total
            if not isinstance(written, int) or not VILLALTA_TOTAL_MIN <= written <= VILLALTA_TOTAL_MAX:
                problems.append(
                    _problem(fact, "valueInteger", f"Villalta total: expected an integer 0-33, got {written!r}")
                )
                return None
            total = written
        return _VillaltaScore(total, villalta_class(total, fact.ulcer), fact.ulcer)
    except ValueError as error:
        problems.append(_problem(fact, "item", str(error)))
        return None


def _score_civiq20(fact: ScoreAssessmentFact, problems: list[Problem]) -> Civiq20Score | None:
    try:
        if fact.resource_type != "QuestionnaireResponse":
            if fact.total is None:
                problems.append(_problem(fact, "valueInteger", "CIVIQ-20 total: expected a number 20-100, got None"))
                return None
            return civiq20_from_total(fact.total)
        score = score_civiq20(dict(fact.items))
    except ValueError as error:
        problems.append(
            _problem(fact, "valueInteger" if fact.resource_type != "QuestionnaireResponse" else "item", str(error))
        )
        return None
    if score is None:
        answered = {name for name, _ in fact.items}
        missing = [f"q{i}" for i in range(1, 21) if f"q{i}" not in answered]
        problems.append(
            _problem(
                fact,
                "item",
                f"CIVIQ-20: {len(missing)} items missing '{', '.join(missing)}': no score "
                "(3 or more missing, or a dimension without any answer)",
            )
        )
        return None
    if score.imputed:
        problems.append(
            _problem(
                fact,
                "item",
                f"CIVIQ-20 items '{', '.join(score.imputed_items)}' missing: imputed by the mean of the answered "
                "items of their dimension",
                "warning",
            )
        )
    return score


def _group_by_patient(facts: FactSet, problems: list[Problem]) -> tuple[dict[str, _PatientFacts], int]:
    """Facts grouped by patient; facts whose patient is not in the data are reported and dropped."""
    grouped: dict[str, _PatientFacts] = defaultdict(_PatientFacts)
    orphans = 0

    def known(fact: ProcedureFact | PatencyFindingFact | ScoreAssessmentFact | AdverseEventFact) -> bool:
        nonlocal orphans
        if fact.patient_id in facts.patients:
            return True
        orphans += 1
        problems.append(
            _problem(fact, "subject", f"refers to 'Patient/{fact.patient_id}', which is not in the data: not used")
        )
        return False

    for procedure in facts.procedures:
        if known(procedure):
            grouped[procedure.patient_id].procedures.append(procedure)
    for finding in facts.findings:
        if known(finding):
            grouped[finding.patient_id].findings.append(finding)
    for order, assessment in enumerate(facts.assessments):
        if known(assessment):
            grouped[assessment.patient_id].assessments.append((order, assessment))
    for event in facts.adverse_events:
        if known(event):
            grouped[event.patient_id].adverse_events.append(event)
    return grouped, orphans


class _Columns:
    """The rows of the patients frame, kept as tuples in :data:`COHORT_COLUMNS` order (missing = ``None``) and
    transposed into typed columns once, at the end."""

    _NAMES = tuple(c.name for c in COHORT_COLUMNS)
    _EMPTY_ROW: dict[str, Any] = dict.fromkeys(_NAMES)

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self._pick = operator.itemgetter(*self._NAMES)

    def add(self, row: dict[str, Any]) -> None:
        unknown = row.keys() - self._EMPTY_ROW.keys()
        if unknown:
            raise KeyError(f"not cohort columns: {sorted(unknown)}")
        self.rows.append(self._pick({**self._EMPTY_ROW, **row}))

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return empty_patients_frame()
        columns = zip(*self.rows, strict=True)
        return pd.DataFrame(
            {c.name: pd.array(list(values), dtype=c.dtype) for c, values in zip(COHORT_COLUMNS, columns, strict=True)}
        )


def _months(days: int | None) -> float | None:
    return None if days is None else days / DAYS_PER_MONTH


def _index_row(
    patient: PatientFact, facts: _PatientFacts, problems: list[Problem], used_dates: list[dt.date]
) -> dict[str, Any] | None:
    """The index-procedure part of a patient's row (demographics, procedure, patency), or ``None``."""
    stentings = [p for p in facts.procedures if p.is_stenting]
    if not stentings:
        return None
    index_date = min(p.day for p in stentings)
    used_dates.append(index_date)
    index_procedures = [p for p in stentings if p.day == index_date]
    index_ids = {p.resource_id for p in index_procedures}
    row: dict[str, Any] = {
        "patient_id": patient.resource_id,
        "sex": patient.gender,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "index_date": index_date.isoformat(),
        "index_procedure_ids": ";".join(sorted(index_ids)),
    }
    first_index = min(index_procedures, key=lambda p: p.resource_id)

    # age
    # A missing or partial birthDate is the adapters' to report (or not); it is counted here (flow with_age).
    if patient.birth_date is not None and patient.birth_date > index_date:
        problems.append(
            _problem(
                patient,
                "birthDate",
                f"birth date '{patient.birth_date}' is after the index date '{index_date}': age left missing",
                "warning",
            )
        )
    elif patient.birth_date is not None:
        row["age"] = age_in_years(patient.birth_date, index_date)

    # segments
    # contract §1: the index procedure's bodySite segments, else the index day's ICD-10-PCS body parts
    from_body_site = [p for p in index_procedures if p.segments and p.segments_source != "icd10pcs"]
    segment_sources = from_body_site or index_procedures
    segments = sorted(set().union(*(p.segments for p in segment_sources)), key=lambda s: _SEGMENT_ORDER.get(s, 99))
    if segments:
        row["stented_segments"] = len(segments)
        row["stented_segment_names"] = ";".join(segments)
        row["below_inguinal_ligament"] = any(s in BELOW_INGUINAL_SEGMENTS for s in segments)
    else:
        problems.append(
            _problem(
                first_index,
                "bodySite",
                "no stented segment recognisable on the index-day stenting "
                "Procedures (bodySite or ICD-10-PCS body part): stented_segments left missing",
                "warning",
            )
        )

    # technical success
    outcomes = {p.outcome for p in index_procedures}
    if "failure" in outcomes:
        row["technical_success"] = False
    elif "success" in outcomes:
        row["technical_success"] = True
    else:
        problems.append(
            _problem(
                first_index,
                "outcome",
                "technical success unknown: no index-day stenting Procedure has a "
                "recognised outcome; left out of the technical-success numerator and denominator",
                "warning",
            )
        )

    # major complication
    complication = any(p.major_complication for p in index_procedures)
    for event in facts.adverse_events:
        if not event.serious:
            continue
        if index_ids.intersection(event.procedure_ids):
            complication = True
        else:
            problems.append(
                _problem(
                    event,
                    "suspectEntity",
                    "serious adverse event not linked to an index procedure "
                    f"'{', '.join(sorted(index_ids))}': not counted as a major complication",
                    "skipped",
                )
            )
    row["major_complication"] = int(complication)

    # patency findings after day 0
    findings: list[Finding] = []
    finding_status = {f.resource_id: f.status for f in facts.findings}
    for fact in facts.findings:
        day = (fact.day - index_date).days
        if day <= 0:
            problems.append(
                _problem(
                    fact,
                    "effectiveDateTime",
                    f"patency finding dated day '{day}': "
                    "before the index procedure / completion imaging, not follow-up",
                )
            )
            continue
        findings.append(Finding(day, fact.status))
        used_dates.append(fact.day)

    # reinterventions after day 0
    reinterventions: list[Reintervention] = []
    for procedure in facts.procedures:
        if procedure.resource_id in index_ids:
            continue
        day = (procedure.day - index_date).days
        if day < 0:
            problems.append(
                _problem(
                    procedure,
                    "performedDateTime",
                    f"dated day '{day}', before the index stenting: not a reintervention",
                )
            )
            continue
        if day == 0:
            problems.append(
                _problem(
                    procedure,
                    "code",
                    "on the index day but not coded as stenting: neither part of the index "
                    "procedure nor a reintervention (reinterventions are after day 0)",
                    "skipped",
                )
            )
            continue
        if not (procedure.is_stenting or procedure.is_reintervention_code):
            problems.append(_problem(procedure, "code", "not coded as stenting or reintervention: not used"))
            continue
        referenced = None
        if procedure.reason is None and procedure.reason_observation_ids:
            statuses = [finding_status[i] for i in procedure.reason_observation_ids if i in finding_status]
            if statuses:
                referenced = "occluded" if "occluded" in statuses else statuses[0]
            else:
                problems.append(
                    _problem(
                        procedure,
                        "reasonReference",
                        "reasonReference names no patency finding of this patient "
                        f"'{', '.join(procedure.reason_observation_ids)}': reason taken from the latest "
                        "finding on or before it",
                        "warning",
                    )
                )
        reinterventions.append(Reintervention(day, procedure.outcome == "failure", procedure.reason, referenced))
        used_dates.append(procedure.day)

    outcome = derive_patency(row.get("technical_success"), findings, reinterventions)
    row["patency_findings"] = len(findings)
    row["reinterventions"] = len(reinterventions)
    row["imaging_follow_up_days"] = outcome.imaging_follow_up_days
    row["imaging_follow_up_months"] = _months(outcome.imaging_follow_up_days)
    for name, days, lost in (
        ("primary_patency", outcome.primary_days, outcome.primary_lost),
        ("primary_assisted_patency", outcome.primary_assisted_days, outcome.primary_assisted_lost),
        ("secondary_patency", outcome.secondary_days, outcome.secondary_lost),
    ):
        row[f"{name}_days"] = days
        row[f"{name}_months"] = _months(days)
        row[f"{name}_lost"] = lost
    return row


def _score_rows(
    index_date: dt.date,
    assessments: Sequence[tuple[int, ScoreAssessmentFact]],
    windows: TimePointWindows,
    problems: list[Problem],
    used_dates: list[dt.date],
) -> dict[str, Any]:
    """The score columns of a patient's row: baseline and 3-month Villalta and CIVIQ-20, and gains."""
    row: dict[str, Any] = {}
    villalta: list[Candidate[tuple[ScoreAssessmentFact, _VillaltaScore]]] = []
    civiq: list[Candidate[tuple[ScoreAssessmentFact, Civiq20Score]]] = []
    for order, fact in assessments:
        day = (fact.day - index_date).days
        is_questionnaire = fact.resource_type == "QuestionnaireResponse"
        if fact.instrument == "villalta":
            score = _score_villalta(fact, problems)
            if score is not None:
                villalta.append(Candidate(day, is_questionnaire, order, (fact, score)))
        else:
            civiq_score = _score_civiq20(fact, problems)
            if civiq_score is not None:
                civiq.append(Candidate(day, is_questionnaire, order, (fact, civiq_score)))

    for prefix, chosen in zip(("baseline", "followup"), choose_time_points(villalta, windows), strict=True):
        if chosen is None:
            continue
        fact, score = chosen.payload
        used_dates.append(fact.day)
        row[f"{prefix}_villalta_day"] = chosen.day
        row[f"{prefix}_villalta_resource_id"] = fact.resource_id
        row[f"{prefix}_villalta"] = score.total
        row[f"{prefix}_villalta_class"] = score.klass
        row[f"{prefix}_ulcer"] = score.ulcer
    if row.get("baseline_villalta") is not None and row.get("followup_villalta") is not None:
        row["villalta_gain"] = row["baseline_villalta"] - row["followup_villalta"]

    for prefix, chosen_civiq in zip(("baseline", "followup"), choose_time_points(civiq, windows), strict=True):
        if chosen_civiq is None:
            continue
        civiq_fact, civiq_score = chosen_civiq.payload
        used_dates.append(civiq_fact.day)
        row[f"{prefix}_civiq20_day"] = chosen_civiq.day
        row[f"{prefix}_civiq20_resource_id"] = civiq_fact.resource_id
        row[f"{prefix}_civiq20"] = civiq_score.raw
        row[f"{prefix}_civiq20_gis"] = civiq_score.gis
        # a total-only Observation does not say whether items were imputed: unknown, not False
        row[f"{prefix}_civiq20_imputed"] = civiq_score.imputed if chosen_civiq.is_questionnaire else None
        for dimension in ("pain", "physical", "social", "psychological"):
            row[f"{prefix}_civiq20_{dimension}"] = getattr(civiq_score, dimension)
    if row.get("baseline_civiq20") is not None and row.get("followup_civiq20") is not None:
        row["civiq20_gain"] = row["baseline_civiq20"] - row["followup_civiq20"]
    return row


def build_cohort(facts: FactSet, windows: TimePointWindows = DEFAULT_WINDOWS) -> Cohort:
    """Build the analysable cohort from the de-duplicated facts of a run.

    :param facts: the run's facts (one winning version per resource).
    :param windows: baseline and 3-month assessment windows, in days from day 0.
    :returns: a :class:`Cohort` whose ``patients`` frame has exactly :data:`COHORT_COLUMNS` (in order, at their
        dtypes), one row per patient with an index stenting procedure, in the order of ``facts.patients``;
        ``problems`` = the problems met here; ``period_start`` = earliest index date, ``period_end`` = latest
        date used (index dates, follow-up findings, reinterventions, chosen assessments); ``flow`` = patient
        counts (see ``docs/cohort.md``).
    """
    # Building allocates millions of small acyclic objects; the cyclic garbage collector would rescan the
    # (large, live) facts again and again for nothing. It is paused for the build and restored afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(facts, windows)
    finally:
        if gc_was_enabled:
            gc.enable()


def _build(facts: FactSet, windows: TimePointWindows) -> Cohort:
    problems: list[Problem] = []
    grouped, orphan_facts = _group_by_patient(facts, problems)
    columns = _Columns()
    index_dates: list[dt.date] = []
    used_dates: list[dt.date] = []
    empty = _PatientFacts()
    for patient_id, patient in facts.patients.items():
        patient_facts = grouped.get(patient_id, empty)
        row = _index_row(patient, patient_facts, problems, used_dates)
        if row is None:
            continue
        index_date = dt.date.fromisoformat(row["index_date"])
        index_dates.append(index_date)
        row.update(_score_rows(index_date, patient_facts.assessments, windows, problems, used_dates))
        columns.add(row)

    frame = columns.frame()

    def known(name: str) -> int:
        return int(frame[name].notna().sum())

    flow = {
        "patients_in_data": len(facts.patients),
        "with_index_procedure": len(frame),
        "without_index_procedure": len(facts.patients) - len(frame),
        "facts_without_patient": orphan_facts,
        "technical_success_known": known("technical_success"),
        "technical_success_unknown": len(frame) - known("technical_success"),
        "with_age": known("age"),
        "with_stented_segments": known("stented_segments"),
        "with_patency_finding": int((frame["patency_findings"] > 0).sum()),
        "with_reintervention": int((frame["reinterventions"] > 0).sum()),
        "with_baseline_villalta": known("baseline_villalta"),
        "with_followup_villalta": known("followup_villalta"),
        "villalta_pairs": known("villalta_gain"),
        "with_baseline_civiq20": known("baseline_civiq20"),
        "with_followup_civiq20": known("followup_civiq20"),
        "civiq20_pairs": known("civiq20_gain"),
    }
    return Cohort(
        patients=frame,
        problems=problems,
        period_start=min(index_dates, default=None),
        period_end=max(used_dates, default=None),
        windows=windows,
        flow=flow,
    )
