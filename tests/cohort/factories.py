"""Small factories of cohort facts for the cohort-layer tests (no FHIR parsing involved).

Dates are built from a day number relative to :data:`DAY0` so that expected day numbers read directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from fhir_pts.adapters.facts import (
    AdverseEventFact,
    FactSet,
    PatencyFindingFact,
    PatencyStatus,
    PatientFact,
    ProcedureFact,
    ScoreAssessmentFact,
)
from fhir_pts.codes import CIVIQ20_ITEMS, VILLALTA_ITEMS

DAY0 = dt.date(2020, 1, 15)


def day(n: int) -> dt.date:
    """The calendar date ``n`` days after :data:`DAY0`."""
    return DAY0 + dt.timedelta(days=n)


def patient(
    pid: str = "p1", gender: str | None = "female", birth_date: dt.date | None = dt.date(1970, 6, 1)
) -> PatientFact:
    return PatientFact(resource_id=pid, gender=gender, birth_date=birth_date)


def stenting(
    rid: str,
    pid: str = "p1",
    on: int = 0,
    segments: Iterable[str] = ("common_iliac_vein",),
    outcome: str | None = "success",
    major_complication: bool = False,
    reason: str | None = None,
    reason_observation_ids: tuple[str, ...] = (),
    segments_source: str | None = None,
) -> ProcedureFact:
    return ProcedureFact(
        resource_id=rid,
        patient_id=pid,
        day=day(on),
        is_stenting=True,
        is_reintervention_code=False,
        segments=frozenset(segments),
        outcome=outcome,  # type: ignore[arg-type]
        major_complication=major_complication,
        reason=reason,  # type: ignore[arg-type]
        reason_observation_ids=reason_observation_ids,
        segments_source=segments_source,  # type: ignore[arg-type]
    )


def reintervention(
    rid: str,
    pid: str = "p1",
    on: int = 100,
    outcome: str | None = None,
    reason: str | None = None,
    reason_observation_ids: tuple[str, ...] = (),
    major_complication: bool = False,
) -> ProcedureFact:
    return ProcedureFact(
        resource_id=rid,
        patient_id=pid,
        day=day(on),
        is_stenting=False,
        is_reintervention_code=True,
        segments=frozenset(),
        outcome=outcome,  # type: ignore[arg-type]
        major_complication=major_complication,
        reason=reason,  # type: ignore[arg-type]
        reason_observation_ids=reason_observation_ids,
    )


def finding(rid: str, pid: str = "p1", on: int = 30, status: PatencyStatus = "patent") -> PatencyFindingFact:
    return PatencyFindingFact(resource_id=rid, patient_id=pid, day=day(on), status=status, method="ultrasound")


def villalta_items(values: Iterable[int] | int = 1, drop: Iterable[str] = ()) -> dict[str, int]:
    """Villalta answers: one value for every item, or one per item in VILLALTA_ITEMS order; ``drop`` removes."""
    vals = [values] * len(VILLALTA_ITEMS) if isinstance(values, int) else list(values)
    items = dict(zip(VILLALTA_ITEMS, vals, strict=True))
    for name in drop:
        del items[name]
    return items


def civiq_items(values: Iterable[int] | int = 1, drop: Iterable[str] = ()) -> dict[str, int]:
    """CIVIQ-20 answers q1..q20: one value for all, or 20 values; ``drop`` removes items."""
    vals = [values] * 20 if isinstance(values, int) else list(values)
    items = dict(zip(CIVIQ20_ITEMS, vals, strict=True))
    for name in drop:
        del items[name]
    return items


def villalta_qr(
    rid: str, pid: str = "p1", on: int = -10, items: Mapping[str, int] | None = None, ulcer: bool | None = False
) -> ScoreAssessmentFact:
    return ScoreAssessmentFact(
        resource_id=rid,
        patient_id=pid,
        day=day(on),
        instrument="villalta",
        items=tuple((villalta_items() if items is None else items).items()),
        total=None,
        flags=() if ulcer is None else (("ulcer", ulcer),),
    )


def villalta_obs(rid: str, pid: str = "p1", on: int = -10, total: int | None = 10) -> ScoreAssessmentFact:
    return ScoreAssessmentFact(
        resource_id=rid,
        patient_id=pid,
        day=day(on),
        instrument="villalta",
        items=(),
        total=total,
        resource_type="Observation",
    )


def civiq_qr(rid: str, pid: str = "p1", on: int = -10, items: Mapping[str, int] | None = None) -> ScoreAssessmentFact:
    return ScoreAssessmentFact(
        resource_id=rid,
        patient_id=pid,
        day=day(on),
        instrument="civiq20",
        items=tuple((civiq_items() if items is None else items).items()),
        total=None,
    )


def civiq_obs(rid: str, pid: str = "p1", on: int = -10, total: int | None = 50) -> ScoreAssessmentFact:
    return ScoreAssessmentFact(
        resource_id=rid,
        patient_id=pid,
        day=day(on),
        instrument="civiq20",
        items=(),
        total=total,
        resource_type="Observation",
    )


def adverse_event(
    rid: str, pid: str = "p1", procedure_ids: tuple[str, ...] = ("s1",), serious: bool = True
) -> AdverseEventFact:
    return AdverseEventFact(resource_id=rid, patient_id=pid, serious=serious, procedure_ids=procedure_ids)


def fact_set(
    patients: Iterable[PatientFact] = (),
    procedures: Iterable[ProcedureFact] = (),
    findings: Iterable[PatencyFindingFact] = (),
    assessments: Iterable[ScoreAssessmentFact] = (),
    adverse_events: Iterable[AdverseEventFact] = (),
) -> FactSet:
    return FactSet(
        patients={p.resource_id: p for p in patients},
        procedures=list(procedures),
        findings=list(findings),
        assessments=list(assessments),
        adverse_events=list(adverse_events),
        problems=[],
    )
