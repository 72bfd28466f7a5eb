"""Shared adapter helpers: dates, references, duplicate-resolution keys; adapt_resource dispatch."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.common import VersionKey, parse_day, reference_id

from .factories import meta, patient


@pytest.mark.parametrize(
    ("written", "day"),
    [
        ("2020-03-01", dt.date(2020, 3, 1)),
        ("2020-03-01T23:59:59+14:00", dt.date(2020, 3, 1)),
        ("2020-03-01T00:00:00-12:00", dt.date(2020, 3, 1)),
        ("2020-03-01T10:00:00Z", dt.date(2020, 3, 1)),
        ("2020-03", None),
        ("2020", None),
        ("2020-02-30", None),
        (None, None),
        (20200301, None),
    ],
)
def test_parse_day_takes_the_calendar_date_as_written(written, day):
    assert parse_day(written) == day


@given(st.dates(), st.times(), st.sampled_from(["Z", "+14:00", "-12:00", "+05:30"]))
def test_parse_day_ignores_time_and_offset(day, time, offset):
    assert parse_day(f"{day.isoformat()}T{time.isoformat()}{offset}") == day


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/1", "1"),
        ({"reference": "Patient/1"}, "1"),
        ("http://h/fhir/Patient/1", "1"),
        ("Patient/1/_history/4", "1"),
        ("urn:uuid:abc", "abc"),
        ("Practitioner/1", None),
        ("Patient/", None),
        ({"display": "Mr X"}, None),
        (None, None),
    ],
)
def test_reference_id(reference, expected):
    assert reference_id(reference, "Patient") == expected


@pytest.mark.parametrize(
    ("later", "earlier", "later_wins"),
    [
        (VersionKey("2"), VersionKey("10"), False),  # numbers: 2 < 10
        (VersionKey("10"), VersionKey("2"), True),
        (VersionKey("b"), VersionKey("a"), True),  # strings
        (VersionKey("a"), VersionKey("b"), False),
        (VersionKey("10"), VersionKey("9a"), False),  # not both integers: as strings, "10" < "9a"
        (VersionKey("1", "2020-01-01T00:00:00Z"), VersionKey("1", "2021-01-01T00:00:00Z"), False),  # same version
        (VersionKey(None, "2021-01-01T00:00:00Z"), VersionKey(None, "2020-06-01T00:00:00Z"), True),
        (VersionKey(None, "2021-01-01T01:00:00+02:00"), VersionKey(None, "2020-12-31T23:30:00Z"), False),  # instants
        (VersionKey("3"), VersionKey(None, "2020-01-01T00:00:00Z"), True),  # not comparable: read last
        (VersionKey(), VersionKey(), True),
        (VersionKey("01"), VersionKey("1"), True),  # equal numbers: read last
    ],
)
def test_version_key_rules(later, earlier, later_wins):
    assert later.wins_over(earlier) is later_wins


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_numeric_version_ids_compare_as_numbers(a, b):
    if a != b:
        assert VersionKey(str(a)).wins_over(VersionKey(str(b))) is (a > b)


def test_version_key_of_resource():
    resource = patient(meta=meta("7", "2024-01-01T00:00:00Z"))
    assert adapt_resource(resource).version == VersionKey("7", "2024-01-01T00:00:00Z")
    assert VersionKey.of({"meta": {"versionId": 7}}) == VersionKey("7")


@pytest.mark.parametrize("resource_type", ["Encounter", "Claim", "DiagnosticReport", "Bundle", 3, None])
def test_other_resource_types_are_irrelevant(resource_type):
    output = adapt_resource({"resourceType": resource_type, "id": "x", "status": "final"})
    assert output.relevant is False and output.facts == [] and output.problems == []
