"""Patient adapter: sex and birth date."""

from __future__ import annotations

import datetime as dt

import pytest

from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.facts import PatientFact

from .factories import patient


def test_patient_fact():
    output = adapt_resource(patient())
    assert output.facts == [PatientFact("pat1", "female", dt.date(1970, 5, 6))]
    assert output.problems == [] and output.key == ("Patient", "pat1")


def test_missing_gender_and_birth_date_are_none_without_problem():
    output = adapt_resource(patient(gender=None, birth_date=None))
    assert output.facts == [PatientFact("pat1", None, None)] and output.problems == []


@pytest.mark.parametrize("birth_date", ["1970", "1970-05", "1970-13-01"])
def test_partial_birth_date_is_reported_and_left_missing(birth_date):
    output = adapt_resource(patient(birth_date=birth_date))
    assert output.facts == [PatientFact("pat1", "female", None)]
    [problem] = output.problems
    assert (problem.resource_type, problem.resource_id, problem.field) == ("Patient", "pat1", "birthDate")
    assert problem.patient_id == "pat1"


def test_birth_date_with_time_keeps_the_calendar_date():
    assert adapt_resource(patient(birth_date="1970-05-06T23:00:00-10:00")).facts[0].birth_date == dt.date(1970, 5, 6)


def test_invalid_gender_is_reported():
    output = adapt_resource(patient(gender="F"))
    assert output.facts[0].gender is None and [p.field for p in output.problems] == ["gender"]


def test_patient_without_id_is_a_problem():
    output = adapt_resource(patient(pid=None))
    assert output.facts == [] and [p.field for p in output.problems] == ["id"]
