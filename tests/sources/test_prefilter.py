"""The NDJSON byte pre-filter: never drops a relevant line, skips the bulk of irrelevant ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts import codes
from fhir_pts.sources.prefilter import CandidateFilter

FILTER = CandidateFilter.for_contract()


def line(resource: dict, spaces: bool = False) -> bytes:
    return json.dumps(resource, separators=(", ", ": ") if spaces else (",", ":")).encode()


def coded(resource_type: str, system: str, code: str, **extra) -> dict:
    return {"resourceType": resource_type, "id": "x", "code": {"coding": [{"system": system, "code": code}]}, **extra}


RELEVANT = [
    {"resourceType": "Patient", "id": "p"},
    {"resourceType": "AdverseEvent", "id": "a"},
    coded("Procedure", codes.CPT, "37238"),
    coded("Procedure", codes.ICD10PCS, "067C3DZ"),
    coded("Procedure", codes.PTS_SYSTEM, "reintervention"),
    coded("Observation", codes.PTS_SYSTEM, "stent-patency"),
    coded("Observation", codes.PTS_SYSTEM, "villalta-total"),
    {"resourceType": "QuestionnaireResponse", "id": "q", "questionnaire": codes.CIVIQ20_QUESTIONNAIRE + "|1"},
    {"resourceType": "Bundle", "id": "b", "entry": []},
]
IRRELEVANT = [
    coded("Observation", "http://loinc.org", "8867-4", subject={"reference": "Patient/p"}),
    coded("Procedure", codes.SNOMED, "430193006"),
    {"resourceType": "QuestionnaireResponse", "id": "q", "questionnaire": "http://example.org/Questionnaire/phq9"},
    {"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p"}},
    {"resourceType": "Claim", "id": "c", "patient": {"reference": "Patient/p"}, "note": "37238 fhir-pts.org"},
    {"resourceType": "Encounter", "id": "e2", "contained": [{"resourceType": "Patient", "id": "c1"}]},
]


@pytest.mark.parametrize("resource", RELEVANT)
@pytest.mark.parametrize("spaces", [False, True])
def test_relevant_lines_are_candidates(resource, spaces):
    assert FILTER.is_candidate(line(resource, spaces))


@pytest.mark.parametrize("resource", IRRELEVANT)
def test_irrelevant_lines_are_skipped(resource):
    assert not FILTER.is_candidate(line(resource))


def test_escaped_slashes_do_not_hide_a_line():
    escaped = line(coded("Observation", codes.PTS_SYSTEM, "stent-patency")).replace(b"/", b"\\/")
    assert json.loads(escaped)["code"]["coding"][0]["system"] == codes.PTS_SYSTEM
    assert FILTER.is_candidate(escaped)


def test_lines_not_starting_with_resource_type_are_parsed():
    assert FILTER.is_candidate(b'{"id":"x","resourceType":"Encounter"}')
    assert FILTER.is_candidate(b"garbage")
    assert not FILTER.is_candidate(b"   ")


def test_concept_map_source_codes_make_candidates():
    local = line(coded("Procedure", "urn:local", "STENT-1"))
    assert not FILTER.is_candidate(local)
    assert CandidateFilter.for_contract(["STENT-1"]).is_candidate(local)
    assert not CandidateFilter.for_contract(["STENT-10"]).is_candidate(local)


POOL = [line(r) for r in RELEVANT + IRRELEVANT] + [
    b"",
    b"  ",
    b"not json",
    line(RELEVANT[0], spaces=True),
    line(IRRELEVANT[0], spaces=True),
    b'{"resourceType":"Obs',  # truncated before the end of its type
]


@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=40), st.booleans())
def test_block_search_equals_line_by_line(lines, final_newline):
    block = b"\n".join(lines) + (b"\n" if final_newline else b"")
    expected = [(i, text) for i, text in enumerate(block.split(b"\n")) if FILTER.is_candidate(text)]
    assert list(FILTER.candidate_lines(block)) == expected


@given(
    st.lists(st.sampled_from([line(r) for r in IRRELEVANT[:1] + RELEVANT[5:7]]), min_size=1, max_size=60),
    st.booleans(),
)
def test_homogeneous_observation_block_search_equals_line_by_line(lines, final_newline):
    block = b"\n".join(lines) + (b"\n" if final_newline else b"")
    expected = [(i, text) for i, text in enumerate(lines) if FILTER.is_candidate(text)]
    assert list(FILTER.candidate_lines(block)) == expected


def test_homogeneous_irrelevant_block_yields_nothing():
    block = b"\n".join(line({"resourceType": "Encounter", "id": str(i)}) for i in range(100)) + b"\n"
    assert list(FILTER.candidate_lines(block)) == []


@given(st.lists(st.sampled_from([line(r) for r in RELEVANT + IRRELEVANT]), min_size=1, max_size=60), st.booleans())
def test_mixed_block_of_well_formed_lines_search_equals_line_by_line(lines, final_newline):
    block = b"\n".join(lines) + (b"\n" if final_newline else b"")
    expected = [(i, text) for i, text in enumerate(lines) if FILTER.is_candidate(text)]
    assert list(FILTER.candidate_lines(block)) == expected
