"""Observation adapter: patency findings (coded or % diameter reduction) and Villalta / CIVIQ-20 totals."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts import codes
from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.facts import PatencyFindingFact, ScoreAssessmentFact
from fhir_pts.adapters.observation import patency_from_percent

from .factories import PTS, cc, observation, patency


@pytest.mark.parametrize("value", ["patent", "stenosis", "occluded"])
def test_coded_patency_value(value):
    [fact] = adapt_resource(patency(value=value)).facts
    assert fact == PatencyFindingFact("obs1", "pat1", dt.date(2020, 4, 15), value, None)


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(0, "patent"), (50, "patent"), (50.5, "stenosis"), (99.9, "stenosis"), (100, "occluded"), (100.0, "occluded")],
)
def test_percent_diameter_reduction(percent, expected):
    [fact] = adapt_resource(patency(percent=percent)).facts
    assert fact.status == expected


@given(st.floats(min_value=0, max_value=100))
def test_percent_thresholds_property(reduction):
    status = patency_from_percent(reduction)
    assert status == ("occluded" if reduction == 100 else "stenosis" if reduction > 50 else "patent")


@pytest.mark.parametrize("percent", [-1, 100.5, 250])
def test_percent_out_of_range_is_a_problem(percent):
    output = adapt_resource(patency(percent=percent))
    assert output.facts == []
    [problem] = output.problems
    assert problem.field == "valueQuantity.value" and "0 and 100" in problem.reason


def test_quantity_in_another_unit_is_a_problem():
    resource = patency(value=None, extra={"valueQuantity": {"value": 3, "unit": "mm", "code": "mm"}})
    output = adapt_resource(resource)
    assert output.facts == [] and [p.field for p in output.problems] == ["valueQuantity"]


def test_unknown_value_code_is_a_problem_naming_it():
    resource = observation(valueCodeableConcept=cc((PTS, "thrombosed")))
    output = adapt_resource(resource)
    assert output.facts == []
    [problem] = output.problems
    assert problem.field == "valueCodeableConcept" and "thrombosed" in problem.reason


def test_missing_value_is_a_problem():
    output = adapt_resource(observation())
    assert output.facts == [] and [p.field for p in output.problems] == ["value[x]"]


@pytest.mark.parametrize(("method", "expected"), [("16310003", "ultrasound"), ("77477000", "ct")])
def test_method(method, expected):
    [fact] = adapt_resource(patency(method=method)).facts
    assert fact.method == expected


def test_unknown_method_is_a_warning_and_kept():
    output = adapt_resource(patency(method="77343006"))  # angiography
    assert output.facts[0].method is None
    assert [(p.field, p.severity) for p in output.problems] == [("method", "warning")]


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_accepted_statuses(status):
    assert len(adapt_resource(patency(status=status)).facts) == 1


@pytest.mark.parametrize("status", ["preliminary", "registered", "entered-in-error", "cancelled", None])
def test_other_statuses_are_skipped_and_reported(status):
    output = adapt_resource(patency(status=status))
    assert output.facts == []
    [problem] = output.problems
    assert (problem.resource_type, problem.resource_id, problem.field) == ("Observation", "obs1", "status")


def test_effective_period_start_and_time_ignored():
    [fact] = adapt_resource(patency(effective="2020-04-15T23:59:59+14:00", period=True)).facts
    assert fact.day == dt.date(2020, 4, 15)


def test_partial_effective_date_is_a_problem():
    output = adapt_resource(patency(effective="2020-04"))
    assert output.facts == [] and [p.field for p in output.problems] == ["effectiveDateTime"]


def test_missing_effective_is_a_problem():
    output = adapt_resource(patency(effective=None))
    assert output.facts == [] and [p.field for p in output.problems] == ["effective[x]"]


def test_other_observations_are_irrelevant_and_silent():
    resource = observation(code=("http://loinc.org", "8310-5"), status="preliminary", valueQuantity={"value": 37})
    output = adapt_resource(resource)
    assert output.relevant is False and output.facts == [] and output.problems == []


@pytest.mark.parametrize(
    ("code", "value", "instrument"),
    [(codes.VILLALTA_TOTAL, 0, "villalta"), (codes.VILLALTA_TOTAL, 33, "villalta"),
     (codes.CIVIQ20_TOTAL, 20, "civiq20"), (codes.CIVIQ20_TOTAL, 100, "civiq20")],
)  # fmt: skip
def test_score_totals(code, value, instrument):
    [fact] = adapt_resource(observation(code=code, valueInteger=value)).facts
    assert fact == ScoreAssessmentFact(
        "obs1", "pat1", dt.date(2020, 4, 15), instrument, (), value, resource_type="Observation"
    )


def test_total_as_whole_number_quantity():
    [fact] = adapt_resource(observation(code=codes.CIVIQ20_TOTAL, valueQuantity={"value": 57.0})).facts
    assert fact.total == 57


@pytest.mark.parametrize(
    ("code", "value"),
    [(codes.VILLALTA_TOTAL, 34), (codes.VILLALTA_TOTAL, -1), (codes.CIVIQ20_TOTAL, 19), (codes.CIVIQ20_TOTAL, 101),
     (codes.VILLALTA_TOTAL, True), (codes.VILLALTA_TOTAL, "12")],
)  # fmt: skip
def test_total_out_of_range_or_wrong_type_is_a_problem(code, value):
    output = adapt_resource(observation(code=code, valueInteger=value))
    assert output.facts == []
    [problem] = output.problems
    assert problem.field == "valueInteger" and repr(value) in problem.reason


def test_fractional_villalta_total_is_a_problem():
    # contract §1: Villalta "value integer 0–33"
    output = adapt_resource(observation(code=codes.VILLALTA_TOTAL, valueQuantity={"value": 12.5}))
    assert output.facts == [] and [p.field for p in output.problems] == ["valueQuantity.value"]


def test_fractional_civiq20_total_is_read():
    # contract §1: CIVIQ-20 "value 20–100 (raw sum)", no integer requirement; a raw sum after §2 imputation
    # of 1-2 items is fractional (e.g. 58.75)
    output = adapt_resource(observation(code=codes.CIVIQ20_TOTAL, valueQuantity={"value": 58.75}))
    [fact] = output.facts
    assert fact.total == 58.75 and output.problems == []
