"""The NDJSON byte pre-filter: never drops a relevant line, skips the bulk of irrelevant ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
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


# --- the block scan on any buffer, with and without the C library's memmem -------------------------------------
OBSERVATION = line(IRRELEVANT[0])
TRICKY = [
    line(RELEVANT[5]),  # a candidate Observation
    # a type that shares the prefix
    line({"resourceType": "ObservationDefinition", "id": "d", "url": "https://fhir-pts.org/x"}),
    line(RELEVANT[0]),  # a Patient inside an Observation file
    line(IRRELEVANT[0], spaces=True),  # the other serialiser style
    b'{"resourceType":"Obs',  # shorter than the block's line prefix
    b"",
    b"\r",
    b"garbage",
]


def block_of(lines: list[bytes], final_newline: bool) -> bytes:
    return b"\n".join(lines) + (b"\n" if final_newline else b"")


def expected_scan(block: bytes) -> tuple[list[tuple[int, bytes]], int, int]:
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines = lines[:-1]
    candidates = [(i, text) for i, text in enumerate(lines) if FILTER.is_candidate(text)]
    return candidates, len(lines), sum(1 for text in lines if text.strip())


@pytest.mark.parametrize("memmem", [True, False], ids=["memmem", "bytes.find"])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the patch is the same for every example
@given(
    st.lists(st.just(OBSERVATION), min_size=1, max_size=30),
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from(TRICKY)), max_size=2),
    st.booleans(),
)
def test_one_odd_line_in_a_block_is_never_skipped(monkeypatch, memmem, kind, lines, odd, final_newline):
    """A homogeneous-looking block (the fast path) with at most two lines of another kind anywhere — first,
    last, a type that only shares the prefix, the other serialiser style, a line too short for the prefix,
    blank lines — scans exactly like the line-by-line test, whatever buffer holds it."""
    from fhir_pts.sources import blockscan

    if not memmem:
        monkeypatch.setattr(blockscan, "_memmem", None)
    lines = list(lines)
    for position, text in odd:
        lines.insert(min(position, len(lines)), text)
    block = block_of(lines, final_newline)
    scanned = FILTER.scan(kind(bytearray(block)) if kind is not bytes else block)
    assert (scanned.candidates, scanned.physical_lines, scanned.resources) == expected_scan(block)
    assert all(type(text) is bytes for _, text in scanned.candidates)


def test_needles_at_the_edges_of_a_block():
    hit = line(RELEVANT[5])
    for lines in ([hit], [hit, OBSERVATION], [OBSERVATION, hit], [OBSERVATION, hit, OBSERVATION]):
        for final_newline in (True, False):
            block = block_of(lines, final_newline)
            assert FILTER.scan(memoryview(block)).candidates == expected_scan(block)[0]
