"""check_resource: input resources against the input profiles; and the documented examples through the adapters."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fhir_pts import codes, conformance
from fhir_pts.pipeline import cohort_from_resources
from tests.profiles.doc_examples import doc_examples

Json = dict[str, Any]
ENGINES = [
    pytest.param(
        "fhirpath",
        marks=pytest.mark.skipif(not conformance.fhirpath_available(), reason="fhirpathpy is not installed"),
    ),
    "python",
]
INPUT_EXAMPLES = {
    "Procedure/stent-1": "pts-index-stenting-procedure",
    "Procedure/redo-1": "pts-reintervention-procedure",
    "Observation/duplex-1": "pts-stent-patency-observation",
    "Observation/villalta-total-1": "pts-villalta-total-observation",
    "Observation/civiq-total-1": "pts-civiq20-total-observation",
}


def _example(key: str) -> Json:
    return copy.deepcopy(doc_examples()[key])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("key", "profile"), INPUT_EXAMPLES.items())
def test_documented_inputs_conform_to_their_profile(key: str, profile: str, engine: conformance.Engine) -> None:
    resource = _example(key)
    assert conformance.infer_profile(resource) == profile
    assert conformance.check_resource(resource, engine=engine) == []
    assert conformance.check_resource(resource, f"{codes.EXTENSION_BASE}/{profile}|0.1.0", engine=engine) == []


def _set(key: str, value: Any) -> Callable[[Json], None]:
    def mutate(r: Json) -> None:
        r[key] = value

    return mutate


def _pop(key: str) -> Callable[[Json], None]:
    def mutate(r: Json) -> None:
        del r[key]

    return mutate


def _patency_value(code: str) -> Callable[[Json], None]:
    def mutate(r: Json) -> None:
        del r["valueQuantity"]
        r["valueCodeableConcept"] = {"coding": [{"system": codes.PTS_SYSTEM, "code": code}]}

    return mutate


def _quantity_unit(r: Json) -> None:
    r["valueQuantity"]["code"] = "mm"


def _string_value(r: Json) -> None:
    del r["valueQuantity"]
    r["valueString"] = "patent"


CASES: list[tuple[str, str, Callable[[Json], None], str]] = [
    ("status", "Procedure/stent-1", _set("status", "in-progress"), "Procedure.status must be 'completed'"),
    (
        "code",
        "Procedure/stent-1",
        _set("code", {"coding": [{"system": codes.CPT, "code": "37248"}]}),
        "Procedure.code: no code from ValueSet https://fhir-pts.org/fhir/ValueSet/index-stenting",
    ),
    ("no-day", "Procedure/redo-1", _pop("performedDateTime"), "Procedure.performed[x] is required"),
    (
        "obs-status",
        "Observation/duplex-1",
        _set("status", "preliminary"),
        "Observation.status: no code from ValueSet https://fhir-pts.org/fhir/ValueSet/observation-status-accepted",
    ),
    (
        "patency-code",
        "Observation/duplex-1",
        _patency_value("occlusion"),  # a reintervention reason, not a finding value
        "Observation.value[x]:valueCodeableConcept: no code from ValueSet https://fhir-pts.org/fhir/ValueSet/patency-status",
    ),
    ("unit", "Observation/duplex-1", _quantity_unit, "Observation.value[x]:valueQuantity.code must be '%'"),
    ("type", "Observation/duplex-1", _string_value, "Observation.value[x] must be one of"),
    ("range", "Observation/villalta-total-1", _set("valueInteger", 34), "Observation.value[x] 34 is outside 0..33"),
    (
        "civiq-range",
        "Observation/civiq-total-1",
        _set("valueInteger", 19),
        "Observation.value[x] 19 is outside 20..100",
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("key", "mutate", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_violation_is_reported(
    key: str, mutate: Callable[[Json], None], message: str, engine: conformance.Engine
) -> None:
    resource = _example(key)
    mutate(resource)
    profile = INPUT_EXAMPLES[key]
    problems = conformance.check_resource(resource, profile, engine=engine)
    assert problems, "no problem reported"
    assert all(p.startswith(f"{profile}: ") for p in problems)
    assert any(message in p for p in problems), problems


def test_missing_day_breaks_the_invariant_in_fhirpath() -> None:
    if not conformance.fhirpath_available():
        pytest.skip("fhirpathpy is not installed")
    resource = _example("Observation/duplex-1")
    resource["effectivePeriod"] = {"end": resource.pop("effectiveDateTime")}
    assert conformance.check_resource(resource, engine="fhirpath") == [
        "pts-stent-patency-observation: pts-2: A day is written: effectiveDateTime, or effectivePeriod.start."
    ]
    resource["effectivePeriod"]["start"] = "2019-06-20"
    assert conformance.check_resource(resource, engine="fhirpath") == []


def test_reintervention_value_set_regex_filter() -> None:
    redo = _example("Procedure/redo-1")
    redo["code"] = {"coding": [{"system": codes.ICD10PCS, "code": "06CD3ZZ"}]}
    assert conformance.infer_profile(redo) == "pts-reintervention-procedure"
    assert conformance.check_resource(redo) == []
    redo["code"]["coding"][0]["code"] = "06CD4ZZ"  # open approach: not an endovascular reintervention
    assert conformance.infer_profile(redo) is None
    assert any("ValueSet" in p for p in conformance.check_resource(redo, "pts-reintervention-procedure"))


def test_no_profile_applies() -> None:
    assert conformance.check_resource({"resourceType": "Patient", "id": "p1"}) == [
        "no fhir-pts input profile applies to Patient/p1"
    ]
    observation = _example("Observation/villalta-total-1")
    assert conformance.check_resource(observation, "pts-index-stenting-procedure") == [
        "pts-index-stenting-procedure: expected a Procedure, got Observation"
    ]


def test_documented_inputs_are_read_by_the_adapters() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1975-05-02"}
    resources = [patient, *(r for r in doc_examples().values() if r["resourceType"] != "MeasureReport")]
    row = cohort_from_resources(r for r in resources if r["resourceType"] != "ConceptMap").patients.iloc[0]
    assert row["index_date"] == "2019-03-14"
    assert row["stented_segments"] == 2
    assert bool(row["technical_success"]) is True
    assert (row["baseline_villalta"], row["baseline_villalta_class"], row["followup_villalta"]) == (14, "moderate", 6)
    assert (row["baseline_civiq20"], row["followup_civiq20"]) == (57.0, 41.0)
    assert row["reinterventions"] == 1 and row["patency_findings"] == 1
