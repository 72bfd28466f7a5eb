"""The index row is built from one function per cohort variable; each works on its own, and a patient with a
problem for every variable gets them in the documented order (the order of problems.csv)."""

from __future__ import annotations

import datetime as dt

from fhir_pts.cohort.build import (
    IndexProcedure,
    age_at_index,
    build_cohort,
    follow_up_findings,
    major_complication,
    reinterventions_after_index,
    stented_segments,
    technical_success,
)
from fhir_pts.problems import Problem

from .factories import DAY0, adverse_event, day, fact_set, finding, patient, reintervention, stenting


def test_index_procedure_is_every_stenting_of_the_earliest_stenting_date() -> None:
    procedures = [stenting("s9", on=5), stenting("s2"), reintervention("r1", on=-3), stenting("s1")]
    index = IndexProcedure.of(procedures)
    assert index is not None
    assert (index.date, index.ids, index.first.resource_id) == (DAY0, frozenset({"s1", "s2"}), "s1")
    assert IndexProcedure.of([reintervention("r1")]) is None


def test_each_variable_on_its_own() -> None:
    problems: list[Problem] = []
    index = IndexProcedure.of([stenting("s1", outcome="failure"), stenting("s2", segments=("external_iliac_vein",))])
    assert index is not None
    assert age_at_index(patient(birth_date=dt.date(1970, 1, 16)), DAY0, problems) == 49  # birthday tomorrow
    assert age_at_index(patient(birth_date=None), DAY0, problems) is None
    assert stented_segments(index, problems) == ["common_iliac_vein", "external_iliac_vein"]
    assert technical_success(index, problems) is False  # a failure wins over a success
    assert major_complication(index, [adverse_event("ae1", procedure_ids=("s2",))], problems) == 1
    used: list[dt.date] = []
    found = follow_up_findings(DAY0, [finding("o1", on=0), finding("o2", on=30, status="occluded")], problems, used)
    assert [(f.day, f.status) for f in found] == [(30, "occluded")] and used == [day(30)]
    procedures = [*index.procedures, reintervention("r1", on=40, reason_observation_ids=("o2",))]
    again = reinterventions_after_index(index, procedures, [finding("o2", on=30, status="occluded")], problems, used)
    assert [(r.day, r.referenced_status) for r in again] == [(40, "occluded")] and used == [day(30), day(40)]
    assert [p.field for p in problems] == ["effectiveDateTime"]  # only the day-0 finding was a problem


def test_problems_come_in_the_order_of_the_variables() -> None:
    facts = fact_set(
        patients=[patient(birth_date=day(10))],  # born after day 0
        procedures=[
            stenting("s1", segments=(), outcome=None),  # no segment, no outcome
            reintervention("r0", on=-5),  # before day 0
            reintervention("r1", on=50, reason_observation_ids=("nowhere",)),  # names no finding
        ],
        findings=[finding("o1", on=0)],  # day 0 is not follow-up
        adverse_events=[adverse_event("ae1", procedure_ids=("other",))],  # not linked to the index procedure
    )
    fields = [(p.resource_id, p.field) for p in build_cohort(facts).problems]
    assert fields == [
        ("p1", "birthDate"),
        ("s1", "bodySite"),
        ("s1", "outcome"),
        ("ae1", "suspectEntity"),
        ("o1", "effectiveDateTime"),
        ("r0", "performedDateTime"),
        ("r1", "reasonReference"),
    ]
