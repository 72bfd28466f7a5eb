"""From the de-duplicated facts of a run to the analysable :class:`~fhir_pts.cohort.model.Cohort` (contract §1, §2).

:func:`build_cohort` is the only entry point. One pass groups the facts by patient, then each patient with an
index stenting procedure becomes one row of :data:`~fhir_pts.cohort.model.COHORT_COLUMNS`; the rows are built
as plain tuples and turned into one typed DataFrame at the end (no per-row pandas work), with the cyclic garbage
collector paused meanwhile, so 100,000 patients take seconds (``benchmarks/bench_cohort.py``).

Rules (each documented column by column in ``docs/cohort.md``; each is one function below, named for its variable:
:class:`IndexProcedure`, :func:`age_at_index`, :func:`stented_segments`, :func:`technical_success`,
:func:`major_complication`, :func:`follow_up_findings`, :func:`reinterventions_after_index`,
:func:`patency_columns`, and the scores' :func:`_score_rows`):

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
- **Scores**: per instrument (:mod:`fhir_pts.instruments`: Villalta, CIVIQ-20 and the plugins'), scored by
  its declared function, time points :mod:`fhir_pts.cohort.timepoints`; gain = baseline − 3 months.

Facts about a patient that has no ``Patient`` resource are reported and not used. :attr:`Cohort.problems`
holds the problems met *here*; those of the adapters stay in :attr:`FactSet.problems` (a run reports both).
"""

from __future__ import annotations

import datetime as dt
import gc
import operator
from collections import defaultdict
from collections.abc import Mapping, Sequence
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
from fhir_pts.codes import BELOW_INGUINAL_SEGMENTS, DAYS_PER_MONTH, SEGMENTS
from fhir_pts.cohort.model import Cohort, Column, TimePointWindows, cohort_columns, empty_patients_frame
from fhir_pts.cohort.patency import Finding, PatencyOutcome, Reintervention, derive_patency
from fhir_pts.cohort.timepoints import Candidate, choose_time_points
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Answers, Instrument, Scored
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


_NO_FLAGS: dict[str, bool | None] = {}


@dataclass(frozen=True, slots=True)
class _Plan:
    """An instrument's cohort columns, named once per build: per time point ``(prefix, day column, resource id
    column, score column, ((extra column, Scored.values key), ...))``, the gain column and the windows."""

    instrument: Instrument
    windows: TimePointWindows
    time_points: tuple[tuple[str, str, str, str, tuple[tuple[str, str], ...]], ...]
    gain: str

    @classmethod
    def of(cls, instrument: Instrument, windows: TimePointWindows) -> _Plan:
        stem = instrument.id
        time_points = tuple(
            (
                when,
                f"{when}_{stem}_day",
                f"{when}_{stem}_resource_id",
                f"{when}_{stem}",
                tuple((extra.name.format(when=when), extra.key) for extra in instrument.time_point_columns),
            )
            for when in ("baseline", "followup")
        )
        return cls(instrument, instrument.windows or windows, time_points, instrument.gain_column)


def _score(instrument: Instrument, fact: ScoreAssessmentFact, problems: list[Problem]) -> Scored | None:
    """Score one assessment with its instrument; an unscorable one is reported (on ``item`` for a response,
    ``valueInteger`` for a total Observation) and gives ``None``; the scoring's warnings are reported."""
    is_questionnaire = fact.resource_type == "QuestionnaireResponse"
    answers = Answers(
        dict(fact.items), dict(fact.flags) if fact.flags else _NO_FLAGS, None if is_questionnaire else fact.total
    )
    try:
        scored = instrument.score(answers)
    except ValueError as error:  # Unscorable included
        problems.append(_problem(fact, "item" if is_questionnaire else "valueInteger", str(error)))
        return None
    problems.extend(_problem(fact, "item", warning, "warning") for warning in scored.warnings)
    return scored


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
    """The rows of the patients frame, kept as tuples in column order (missing = ``None``) and transposed into
    typed columns once, at the end."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self._EMPTY_ROW: dict[str, Any] = dict.fromkeys(c.name for c in self.columns)
        self.rows: list[tuple[Any, ...]] = []
        self._pick = operator.itemgetter(*self._EMPTY_ROW)

    def add(self, row: dict[str, Any]) -> None:
        unknown = row.keys() - self._EMPTY_ROW.keys()
        if unknown:
            raise KeyError(f"not cohort columns: {sorted(unknown)}")
        self.rows.append(self._pick({**self._EMPTY_ROW, **row}))

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return empty_patients_frame(self.columns)
        columns = zip(*self.rows, strict=True)
        return pd.DataFrame(
            {c.name: pd.array(list(values), dtype=c.dtype) for c, values in zip(self.columns, columns, strict=True)}
        )


def _months(days: int | None) -> float | None:
    return None if days is None else days / DAYS_PER_MONTH


@dataclass(frozen=True, slots=True)
class IndexProcedure:
    """A patient's index procedure (contract §1): every stenting Procedure dated on the earliest stenting date.

    ``date`` is day 0, the time origin of every ``*_day`` / ``*_days`` / ``*_months`` column; ``first`` (lowest
    resource id) is the Procedure on which problems about the index procedure as a whole are reported.
    """

    date: dt.date
    procedures: tuple[ProcedureFact, ...]
    ids: frozenset[str]
    first: ProcedureFact

    @classmethod
    def of(cls, procedures: Sequence[ProcedureFact]) -> IndexProcedure | None:
        """The index procedure among a patient's procedures; None when none is coded as stenting."""
        stentings = [p for p in procedures if p.is_stenting]
        if not stentings:
            return None
        date = min(p.day for p in stentings)
        on_day_0 = tuple(p for p in stentings if p.day == date)
        return cls(date, on_day_0, frozenset(p.resource_id for p in on_day_0), min(on_day_0, key=_resource_id))


def _resource_id(fact: ProcedureFact) -> str:
    return fact.resource_id


def age_at_index(patient: PatientFact, index_date: dt.date, problems: list[Problem]) -> int | None:
    """``age``: whole years at day 0, birthday-exact (:func:`age_in_years`).

    None when the birth date is unknown (missing or partial: the adapters' to report, counted in the flow as
    ``with_age``) or after day 0 (reported here as a warning on ``birthDate``).
    """
    if patient.birth_date is None:
        return None
    if patient.birth_date > index_date:
        problems.append(
            _problem(
                patient,
                "birthDate",
                f"birth date '{patient.birth_date}' is after the index date '{index_date}': age left missing",
                "warning",
            )
        )
        return None
    return age_in_years(patient.birth_date, index_date)


def stented_segments(index: IndexProcedure, problems: list[Problem]) -> list[str]:
    """The stented venous segments of the index procedure, in anatomical order (``stented_segments`` is their
    number, ``stented_segment_names`` the names, ``below_inguinal_ligament`` whether one is below it).

    Contract §1: the union of the index procedures' ``bodySite`` segments, else of the index day's ICD-10-PCS
    body parts; side ignored. Empty (the three columns left missing, not 0) when none is recognisable, which is
    reported as a warning on the first index Procedure's ``bodySite``.
    """
    from_body_site = [p for p in index.procedures if p.segments and p.segments_source != "icd10pcs"]
    sources = from_body_site or index.procedures
    segments = sorted(set().union(*(p.segments for p in sources)), key=lambda s: _SEGMENT_ORDER.get(s, 99))
    if not segments:
        problems.append(
            _problem(
                index.first,
                "bodySite",
                "no stented segment recognisable on the index-day stenting "
                "Procedures (bodySite or ICD-10-PCS body part): stented_segments left missing",
                "warning",
            )
        )
    return segments


def technical_success(index: IndexProcedure, problems: list[Problem]) -> bool | None:
    """``technical_success`` of the index procedure: any failure → False; else any success → True; else None
    (unknown: reported as a warning, left out of the technical-success numerator and denominator)."""
    outcomes = {p.outcome for p in index.procedures}
    if "failure" in outcomes:
        return False
    if "success" in outcomes:
        return True
    problems.append(
        _problem(
            index.first,
            "outcome",
            "technical success unknown: no index-day stenting Procedure has a "
            "recognised outcome; left out of the technical-success numerator and denominator",
            "warning",
        )
    )
    return None


def major_complication(
    index: IndexProcedure, adverse_events: Sequence[AdverseEventFact], problems: list[Problem]
) -> int:
    """``major_complication`` (0/1): an index Procedure with a ``major-complication`` complication, or a serious
    AdverseEvent whose suspect entity is an index Procedure. A serious AdverseEvent linked to no index
    Procedure is reported and not counted."""
    complication = any(p.major_complication for p in index.procedures)
    for event in adverse_events:
        if not event.serious:
            continue
        if index.ids.intersection(event.procedure_ids):
            complication = True
        else:
            problems.append(
                _problem(
                    event,
                    "suspectEntity",
                    "serious adverse event not linked to an index procedure "
                    f"'{', '.join(sorted(index.ids))}': not counted as a major complication",
                    "skipped",
                )
            )
    return int(complication)


def follow_up_findings(
    index_date: dt.date, findings: Sequence[PatencyFindingFact], problems: list[Problem], used_dates: list[dt.date]
) -> list[Finding]:
    """The patency findings of the follow-up, at their day from day 0 (``patency_findings`` is their number).

    Only findings dated after day 0 are follow-up; earlier ones (day-0 completion imaging included) are
    reported and not used. The dates used are added to ``used_dates`` (the cohort's period).
    """
    follow_up: list[Finding] = []
    for fact in findings:
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
        follow_up.append(Finding(day, fact.status))
        used_dates.append(fact.day)
    return follow_up


def reinterventions_after_index(
    index: IndexProcedure,
    procedures: Sequence[ProcedureFact],
    findings: Sequence[PatencyFindingFact],
    problems: list[Problem],
    used_dates: list[dt.date],
) -> list[Reintervention]:
    """The reinterventions, at their day from day 0 (``reinterventions`` is their number): the patient's
    procedures coded as stenting or reintervention and dated after day 0, each with whether it failed and why it
    was done (its ``reasonCode``, else the status of the patency findings its ``reasonReference`` names).

    Procedures before day 0, other procedures on day 0 and procedures with other codes are reported and not
    used. The dates used are added to ``used_dates`` (the cohort's period).
    """
    finding_status = {f.resource_id: f.status for f in findings}
    found: list[Reintervention] = []
    for procedure in procedures:
        if procedure.resource_id in index.ids:
            continue
        day = (procedure.day - index.date).days
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
        found.append(Reintervention(day, procedure.outcome == "failure", procedure.reason, referenced))
        used_dates.append(procedure.day)
    return found


def patency_columns(outcome: PatencyOutcome) -> dict[str, Any]:
    """The follow-up and patency columns: ``imaging_follow_up_days`` / ``_months`` and, per definition
    (primary, primary-assisted, secondary), ``<definition>_days`` / ``_months`` (time from day 0 to the loss of
    patency, or to the last patency finding when censored; months = days / 30.4375) and ``<definition>_lost``
    (True: lost, the event; False: censored). The rules: :func:`fhir_pts.cohort.patency.derive_patency`."""
    columns: dict[str, Any] = {
        "imaging_follow_up_days": outcome.imaging_follow_up_days,
        "imaging_follow_up_months": _months(outcome.imaging_follow_up_days),
    }
    for name, days, lost in (
        ("primary_patency", outcome.primary_days, outcome.primary_lost),
        ("primary_assisted_patency", outcome.primary_assisted_days, outcome.primary_assisted_lost),
        ("secondary_patency", outcome.secondary_days, outcome.secondary_lost),
    ):
        columns[f"{name}_days"] = days
        columns[f"{name}_months"] = _months(days)
        columns[f"{name}_lost"] = lost
    return columns


def _index_row(
    patient: PatientFact, facts: _PatientFacts, problems: list[Problem], used_dates: list[dt.date]
) -> dict[str, Any] | None:
    """The index-procedure part of a patient's row (demographics, procedure, patency), or ``None`` when the
    patient has no stenting Procedure. One function per variable; problems are reported in this order."""
    index = IndexProcedure.of(facts.procedures)
    if index is None:
        return None
    used_dates.append(index.date)
    age = age_at_index(patient, index.date, problems)
    segments = stented_segments(index, problems)
    success = technical_success(index, problems)
    complication = major_complication(index, facts.adverse_events, problems)
    findings = follow_up_findings(index.date, facts.findings, problems, used_dates)
    reinterventions = reinterventions_after_index(index, facts.procedures, facts.findings, problems, used_dates)
    return {
        "patient_id": patient.resource_id,
        "sex": patient.gender,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "index_date": index.date.isoformat(),
        "index_procedure_ids": ";".join(sorted(index.ids)),
        "age": age,
        "stented_segments": len(segments) if segments else None,
        "stented_segment_names": ";".join(segments) if segments else None,
        "below_inguinal_ligament": any(s in BELOW_INGUINAL_SEGMENTS for s in segments) if segments else None,
        "technical_success": success,
        "major_complication": complication,
        "patency_findings": len(findings),
        "reinterventions": len(reinterventions),
        **patency_columns(derive_patency(success, findings, reinterventions)),
    }


def _score_rows(
    index_date: dt.date,
    assessments: Sequence[tuple[int, ScoreAssessmentFact]],
    plans: Mapping[str, _Plan],
    problems: list[Problem],
    used_dates: list[dt.date],
) -> dict[str, Any]:
    """The score columns of a patient's row: per instrument, baseline and 3-month scores and the gain."""
    row: dict[str, Any] = {}
    candidates: dict[str, list[Candidate[tuple[ScoreAssessmentFact, Scored]]]] = {}
    for order, fact in assessments:
        plan = plans.get(fact.instrument)
        if plan is None:
            continue  # read by a reader that knew more instruments than this cohort is built with
        scored = _score(plan.instrument, fact, problems)
        if scored is not None:
            day = (fact.day - index_date).days
            candidates.setdefault(fact.instrument, []).append(
                Candidate(day, fact.resource_type == "QuestionnaireResponse", order, (fact, scored))
            )
    for stem, found in candidates.items():
        plan = plans[stem]
        scores = []
        for (_, day_column, id_column, score_column, extras), chosen in zip(
            plan.time_points, choose_time_points(found, plan.windows), strict=True
        ):
            if chosen is None:
                scores.append(None)
                continue
            fact, scored = chosen.payload
            used_dates.append(fact.day)
            row[day_column] = chosen.day
            row[id_column] = fact.resource_id
            row[score_column] = scored.total
            scores.append(scored.total)
            values = scored.values
            for column, key in extras:
                row[column] = values.get(key)
        if scores[0] is not None and scores[1] is not None:
            row[plan.gain] = scores[0] - scores[1]
    return row


def build_cohort(
    facts: FactSet,
    windows: TimePointWindows = DEFAULT_WINDOWS,
    instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS,
) -> Cohort:
    """Build the analysable cohort from the de-duplicated facts of a run.

    :param facts: the run's facts (one winning version per resource).
    :param windows: baseline and 3-month assessment windows, in days from day 0 (for every instrument that does
        not declare its own).
    :param instruments: the instruments to score (Villalta and CIVIQ-20 by default; a run adds the plugins').
    :returns: a :class:`Cohort` whose ``patients`` frame has exactly the columns of
        :func:`~fhir_pts.cohort.model.cohort_columns` of ``instruments`` (:data:`COHORT_COLUMNS` by default, in
        order, at their dtypes), one row per patient with an index stenting procedure, in the order of
        ``facts.patients``;
        ``problems`` = the problems met here; ``period_start`` = earliest index date, ``period_end`` = latest
        date used (index dates, follow-up findings, reinterventions, chosen assessments); ``flow`` = patient
        counts (see ``docs/cohort.md``).
    """
    # Building allocates millions of small acyclic objects; the cyclic garbage collector would rescan the
    # (large, live) facts again and again for nothing. It is paused for the build and restored afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(facts, windows, tuple(instruments))
    finally:
        if gc_was_enabled:
            gc.enable()


def _build(facts: FactSet, windows: TimePointWindows, instruments: tuple[Instrument, ...]) -> Cohort:
    problems: list[Problem] = []
    grouped, orphan_facts = _group_by_patient(facts, problems)
    columns = _Columns(cohort_columns(instruments))
    plans = {instrument.id: _Plan.of(instrument, windows) for instrument in instruments}
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
        row.update(_score_rows(index_date, patient_facts.assessments, plans, problems, used_dates))
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
    }
    for instrument in instruments:
        flow[f"with_baseline_{instrument.id}"] = known(f"baseline_{instrument.id}")
        flow[f"with_followup_{instrument.id}"] = known(f"followup_{instrument.id}")
        flow[f"{instrument.id}_pairs"] = known(instrument.gain_column)
    return Cohort(
        patients=frame,
        problems=problems,
        period_start=min(index_dates, default=None),
        period_end=max(used_dates, default=None),
        windows=windows,
        flow=flow,
        instruments=instruments,
    )
