"""Procedure adapter: every stenting / reintervention encoding of contract §1, segments, outcome, reasons."""

from __future__ import annotations

import datetime as dt

import pytest

from fhir_pts import codes
from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.facts import ProcedureFact

from .factories import PTS, procedure

CPT, PCS, SCT = codes.CPT, codes.ICD10PCS, codes.SNOMED


def only_fact(resource: dict) -> ProcedureFact:
    output = adapt_resource(resource)
    assert len(output.facts) == 1, output
    fact = output.facts[0]
    assert isinstance(fact, ProcedureFact)
    return fact


@pytest.mark.parametrize(
    "coding",
    [(CPT, "37238"), (CPT, "37239"), (PTS, "venous-stenting")] + [(PCS, c) for c in sorted(codes.ICD10PCS_STENTING)],
)
def test_every_stenting_code_is_recognised(coding):
    fact = only_fact(procedure(code=[coding]))
    assert fact.is_stenting and not fact.is_reintervention_code
    assert fact.patient_id == "pat1" and fact.day == dt.date(2020, 1, 15)


@pytest.mark.parametrize(
    "coding",
    [(CPT, c) for c in ("37248", "37249", "37187", "37188", "37212", "37214")]
    + [(PTS, "reintervention"), (PCS, "067C3ZZ"), (PCS, "06703ZZ"), (PCS, "06CD3ZZ"), (PCS, "06CN3ZZ")],
)
def test_every_reintervention_code_is_recognised(coding):
    fact = only_fact(procedure(code=[coding]))
    assert fact.is_reintervention_code and not fact.is_stenting


@pytest.mark.parametrize(
    "coding",
    [
        (SCT, "37238"),  # right code, wrong system
        (CPT, "37237"),
        (PCS, "067C4DZ"),  # open approach, not percutaneous
        (PCS, "06CC0ZZ"),
        (PCS, "067C3D"),
        ("http://www.ama-assn.org/go/cpt/", "37238"),
    ],
)
def test_other_codes_are_irrelevant_and_silent(coding):
    output = adapt_resource(procedure(code=[coding], status="in-progress"))
    assert output.facts == [] and output.problems == [] and output.relevant is False


def test_display_is_never_used_for_matching():
    resource = procedure(code=[(SCT, "1")])
    resource["code"]["coding"][0]["display"] = "venous-stenting"
    resource["code"]["text"] = "Venous stenting 37238"
    assert adapt_resource(resource).relevant is False


def test_snomed_body_sites_give_segments_side_ignored_and_win_over_icd_body_part():
    fact = only_fact(
        procedure(
            code=[(PCS, "067M3DZ")],  # femoral by its body part, but bodySite is given
            body_sites=[(SCT, "46027005"), (SCT, "63507001"), (SCT, "397363009")],
        )
    )
    assert fact.segments == {"common_iliac_vein", "external_iliac_vein", "common_femoral_vein"}
    assert fact.segments_source == "bodySite"


@pytest.mark.parametrize(
    ("code", "segment"),
    [
        ("06703DZ", "inferior_vena_cava"),
        ("067C3DZ", "common_iliac_vein"),
        ("067D3DZ", "common_iliac_vein"),
        ("067F3DZ", "external_iliac_vein"),
        ("067G3DZ", "external_iliac_vein"),
        ("067M3DZ", "femoral_vein"),
        ("067N3DZ", "femoral_vein"),
    ],
)
def test_icd10pcs_body_part_gives_the_segment_without_body_site(code, segment):
    fact = only_fact(procedure(code=[(PCS, code)]))
    assert fact.segments == {segment}
    assert fact.segments_source == "icd10pcs"


def test_left_and_right_common_iliac_codes_are_one_segment():
    fact = only_fact(procedure(code=[(PCS, "067C3DZ"), (PCS, "067D3DZ"), (PCS, "067F3DZ")]))
    assert fact.segments == {"common_iliac_vein", "external_iliac_vein"}


def test_cpt_stenting_without_body_site_has_no_segment():
    fact = only_fact(procedure(code=[(CPT, "37238")]))
    assert fact.segments == frozenset() and fact.segments_source is None


def test_unrecognised_body_site_is_a_warning_and_falls_back_to_icd():
    output = adapt_resource(procedure(code=[(PCS, "067F3DZ")], body_sites=[(SCT, "56849005")]))  # popliteal
    assert output.facts[0].segments == {"external_iliac_vein"}
    [problem] = output.problems
    assert (problem.field, problem.severity, problem.resource_id) == ("bodySite", "warning", "proc1")
    assert "56849005" in problem.reason


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ([(SCT, "385669000")], "success"),
        ([(PTS, "technical-success")], "success"),
        ([(SCT, "385671000")], "failure"),
        ([(SCT, "385670004")], "failure"),
        ([(PTS, "technical-failure")], "failure"),
        ([(SCT, "385669000"), (SCT, "385671000")], "failure"),  # any failure wins
        (None, None),
    ],
)
def test_outcome(outcome, expected):
    assert only_fact(procedure(outcome=outcome)).outcome == expected


def test_unknown_outcome_is_reported_and_left_unknown():
    output = adapt_resource(procedure(outcome=[(SCT, "12345")]))
    assert output.facts[0].outcome is None
    assert [(p.field, p.severity) for p in output.problems] == [("outcome", "warning")]


def test_major_complication():
    assert only_fact(procedure(complication=[(PTS, "major-complication")])).major_complication is True
    assert only_fact(procedure()).major_complication is False
    output = adapt_resource(procedure(complication=[(SCT, "131148009")]))
    assert output.facts[0].major_complication is False
    assert [p.field for p in output.problems] == ["complication"]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [([(PTS, "stenosis")], "stenosis"), ([(PTS, "occlusion")], "occlusion"), (None, None)],
)
def test_reason_code(reason, expected):
    fact = only_fact(procedure(code=[(CPT, "37248")], reason_code=reason))
    assert fact.reason == expected


def test_reason_reference_observation_ids_in_every_reference_form():
    fact = only_fact(
        procedure(
            code=[(CPT, "37248")],
            reason_reference=["Observation/o1", "https://ehr.example/fhir/Observation/o2/_history/3", "Condition/c1"],
        )
    )
    assert fact.reason_observation_ids == ("o1", "o2")
    assert fact.reason is None


def test_unknown_reintervention_reason_code_is_a_warning():
    output = adapt_resource(procedure(code=[(CPT, "37248")], reason_code=[(SCT, "1234")]))
    assert output.facts[0].reason is None
    assert [(p.field, p.severity) for p in output.problems] == [("reasonCode", "warning")]


@pytest.mark.parametrize("status", ["in-progress", "entered-in-error", "not-done", None])
def test_status_other_than_completed_is_skipped_and_reported(status):
    output = adapt_resource(procedure(status=status))
    assert output.facts == []
    [problem] = output.problems
    assert (problem.resource_type, problem.resource_id, problem.field) == ("Procedure", "proc1", "status")
    assert "completed" in problem.reason and problem.patient_id == "pat1"


def test_performed_period_start_is_the_day_time_and_offset_ignored():
    fact = only_fact(procedure(performed="2019-12-31T23:30:00-05:00", period=True))
    assert fact.day == dt.date(2019, 12, 31)  # as written, not converted to UTC


@pytest.mark.parametrize("performed", ["2015-03", "2015", "2015-02-30"])
def test_partial_or_invalid_date_is_a_problem(performed):
    output = adapt_resource(procedure(performed=performed))
    assert output.facts == []
    assert [p.field for p in output.problems] == ["performedDateTime"]
    assert repr(performed) in output.problems[0].reason


def test_missing_date_is_a_problem():
    output = adapt_resource(procedure(performed=None))
    assert output.facts == [] and [p.field for p in output.problems] == ["performed[x]"]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Patient/abc", "abc"),
        ("https://ehr.example/fhir/Patient/abc", "abc"),
        ("urn:uuid:0f3c-11", "0f3c-11"),
        ("Patient/abc/_history/2", "abc"),
    ],
)
def test_subject_reference_forms(subject, expected):
    assert only_fact(procedure(subject=subject)).patient_id == expected


@pytest.mark.parametrize("subject", ["Group/g1", "Patient?identifier=x|1", ""])
def test_subject_not_a_patient_is_a_problem(subject):
    output = adapt_resource(procedure(subject=subject))
    assert output.facts == [] and [p.field for p in output.problems] == ["subject"]
    assert "identifier" not in output.problems[0].reason  # an MRN in a conditional reference is not echoed
