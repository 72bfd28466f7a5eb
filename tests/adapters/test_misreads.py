"""Silent misreads (issue #18 item 7): FHIR's date grammar exactly, implausible dates warned, malformed
elements reported instead of dropped, and nothing raises."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts import codes
from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.common import FHIR_DATETIME, parse_day
from fhir_pts.adapters.facts import PatientFact, ProcedureFact

from .factories import observation, patency, patient, procedure

# The regex of FHIR R4 dateTime, copied from the specification (datatypes.html#dateTime), independent of ours.
SPEC_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
DATEISH = st.text(alphabet="0123456789-T:+Z.W ", max_size=32)


@pytest.mark.parametrize(
    "written", ["2019-W01-1", "20170228", "2017-02-28junk", "2017-02-28T10:00", "2017-02-28 10:00:00Z", "+2017-02-28",
                "2017-2-28", "2017-02-28T10:00:00", "0000-01-01", "2017-02-28T24:00:00Z", "2017-02-28T10:00:00+15:00"],
)  # fmt: skip
def test_lenient_iso_forms_are_not_fhir_dates(written: str) -> None:
    assert parse_day(written) is None


@given(st.one_of(DATEISH, st.text(max_size=40)))
def test_a_day_is_read_only_from_the_fhir_grammar(written: str) -> None:
    day = parse_day(written)
    if day is not None:
        assert SPEC_DATETIME.fullmatch(written) and len(written) >= 10
        assert day == dt.date.fromisoformat(written[:10])
    elif SPEC_DATETIME.fullmatch(written) and len(written) >= 10:
        with pytest.raises(ValueError):  # only a day that does not exist (2019-02-30) is refused then
            dt.date.fromisoformat(written[:10])
    assert bool(FHIR_DATETIME.fullmatch(written)) == bool(SPEC_DATETIME.fullmatch(written))


@given(st.dates(), st.text(min_size=1, max_size=12))
def test_anything_after_a_date_that_is_not_a_time_is_refused(day: dt.date, tail: str) -> None:
    written = day.isoformat() + tail
    assert (parse_day(written) is None) == (SPEC_DATETIME.fullmatch(written) is None)


def reasons(resource: dict) -> list[tuple[str, str, str]]:
    return [(p.field, p.severity, p.reason) for p in adapt_resource(resource).problems]


@pytest.mark.parametrize("written", ["9999-12-31", "0001-01-01T00:00:00Z", "1899-12-31"])
def test_implausible_procedure_dates_are_warned_and_used(written: str) -> None:
    output = adapt_resource(procedure(performed=written))
    assert isinstance(output.facts[0], ProcedureFact)
    assert [(p.field, p.severity) for p in output.problems] == [("performedDateTime", "warning")]
    assert "implausible" in output.problems[0].reason


def test_invalid_procedure_date_is_reported_and_skipped() -> None:
    output = adapt_resource(procedure(performed="2017-02-28junk"))
    assert output.facts == []
    assert output.problems[0].field == "performedDateTime" and "invalid date" in output.problems[0].reason


def test_implausible_birth_date_is_warned() -> None:
    output = adapt_resource(patient(birth_date="1850-01-01"))
    assert output.facts[0].birth_date == dt.date(1850, 1, 1)
    assert [(p.field, p.severity) for p in output.problems] == [("birthDate", "warning")]


def test_null_birth_date_is_reported() -> None:
    output = adapt_resource({"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": None})
    fact = output.facts[0]
    assert isinstance(fact, PatientFact) and fact.birth_date is None
    assert [(p.field, p.severity) for p in output.problems] == [("birthDate", "skipped")]
    assert "null" in output.problems[0].reason


def test_unrecognised_body_site_beside_a_recognised_one_is_reported() -> None:
    resource = procedure(body_sites=[(codes.SNOMED, "46027005"), (codes.SNOMED, "12345678"), ("http://local", "LIV")])
    output = adapt_resource(resource)
    assert output.facts[0].segments == frozenset({"common_iliac_vein"})
    ((field, severity, reason),) = [(p.field, p.severity, p.reason) for p in output.problems]
    assert (field, severity) == ("bodySite", "warning")
    assert "12345678" in reason and "http://local|LIV" in reason


def test_non_string_id_is_reported_not_stringified() -> None:
    output = adapt_resource(procedure(rid=123))  # type: ignore[arg-type]
    assert output.facts == [] and output.key is None
    assert output.problems[0].field == "id" and "not a string" in output.problems[0].reason


def test_stenting_procedure_with_a_string_code_is_reported() -> None:
    output = adapt_resource(procedure(code="37238"))  # the factory's code is replaced by the string
    assert output.facts == []
    assert output.problems[0].field == "code" and "string '37238'" in output.problems[0].reason
    assert output.problems[0].patient_id == "pat1"


def test_patency_observation_with_null_coding_is_reported() -> None:
    resource = patency()
    resource["code"] = {"coding": None}
    output = adapt_resource(resource)
    assert output.facts == []
    assert output.problems[0].field == "code" and "null" in output.problems[0].reason


def test_irrelevant_resources_stay_silent() -> None:
    assert adapt_resource(observation(code=("http://loinc.org", "8867-4"))).relevant is False
    assert adapt_resource(procedure(code=[("http://snomed.info/sct", "80146002")])).relevant is False


@pytest.mark.parametrize("subject", ["Patient/", "Patient//", "/", "urn:uuid:", "Group/", "/Patient"])
def test_broken_subjects_are_problems_not_crashes(subject: str) -> None:
    output = adapt_resource(procedure(subject=subject))
    assert output.facts == []
    assert output.problems[0].field == "subject"
    assert "bug" not in output.problems[0].reason
