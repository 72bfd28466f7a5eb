"""The package against the team's code that uses it: the ConceptMap template loads into the adapters'
translator, and the MeasureReports the writer builds conform to check_measure_report."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_pts import codes, conformance
from fhir_pts.adapters.concept_map import ConceptMapTranslator
from fhir_pts.outputs.measure_report import build_measure_report
from fhir_pts.pipeline import analyse, cohort_from_resources


def test_concept_map_template_is_read_by_the_adapters() -> None:
    template = conformance.load_package()[f"{codes.CANONICAL_BASE}/ConceptMap/local-codes-template"]
    translator = ConceptMapTranslator.from_resources([template])
    assert translator.translate("http://hospital.example.org/fhir/CodeSystem/procedures", "VSTENT") == [
        (codes.PTS_SYSTEM, "venous-stenting")
    ]
    assert translator.translate("http://hospital.example.org/fhir/CodeSystem/imaging-results", "STENT-OCCL") == [
        (codes.PTS_SYSTEM, "occluded")
    ]
    assert translator.translate("http://hospital.example.org/fhir/CodeSystem/imaging-results", "STENT-NA") == []


def _patient(pid: str, gender: str, birth: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth}


def _stenting(pid: str, day: str, outcome: str) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": f"stent-{pid}",
        "status": "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": codes.CPT, "code": "37238"}]},
        "performedDateTime": day,
        "bodySite": [{"coding": [{"system": codes.SNOMED, "code": "46027005"}]}],
        "outcome": {"coding": [{"system": codes.SNOMED, "code": outcome}]},
    }


def _patency(pid: str, n: int, day: str, value: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"pat-{pid}-{n}",
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": codes.PTS_SYSTEM, "code": "stent-patency"}]},
        "effectiveDateTime": day,
        "valueCodeableConcept": {"coding": [{"system": codes.PTS_SYSTEM, "code": value}]},
    }


def _resources() -> list[dict[str, Any]]:
    return [
        _patient("a", "female", "1970-03-01"),
        _patient("b", "male", "1982-07-15"),
        _patient("c", "female", "1990-01-20"),
        _stenting("a", "2020-01-10", "385669000"),
        _stenting("b", "2020-02-03", "385669000"),
        _stenting("c", "2020-03-05", "385671000"),
        _patency("a", 1, "2020-07-10", "patent"),
        _patency("a", 2, "2021-01-12", "stenosis"),
        _patency("b", 1, "2020-08-01", "patent"),
    ]


@pytest.mark.parametrize("resources", [[], _resources()], ids=["empty-cohort", "three-patients"])
def test_the_writers_measure_reports_conform(resources: list[dict[str, Any]]) -> None:
    cohort = cohort_from_resources(resources)
    outcomes = analyse(cohort)
    packaged = {r["id"] for r in conformance.load_package().values() if r["resourceType"] == "Measure"}
    assert {o.info.id for o in outcomes} >= packaged
    checked = 0
    for outcome in outcomes:
        if not outcome.ok or outcome.info.id not in packaged:  # a third-party plugin's measure is not ours
            continue
        report = build_measure_report(outcome, cohort, date="2026-11-25T12:00:00+00:00")
        assert conformance.check_measure_report(report) == [], outcome.info.id
        checked += 1
    assert checked >= 11


def _declared_statistics(measure: dict[str, Any]) -> list[str]:
    return [
        part["valueString"]
        for group in measure["group"]
        for ext in group.get("extension", [])
        if ext["url"] == f"{codes.EXTENSION_BASE}/statistic"
        for part in ext["extension"]
        if part["url"] == "name"
    ]


def test_declared_statistics_are_produced_by_the_built_in_analyses() -> None:
    outcomes = {o.info.id: o for o in analyse(cohort_from_resources(_resources()))}
    for resource in conformance.load_package().values():
        if resource["resourceType"] != "Measure":
            continue
        declared = _declared_statistics(resource)
        result = outcomes[resource["id"]].result
        assert result is not None, resource["id"]
        produced = [s.name for s in result.statistics]
        assert declared, resource["id"]
        assert set(declared) <= set(produced), (resource["id"], sorted(set(declared) - set(produced)))
        assert len(declared) == len(set(declared))
        declared_populations = {
            c["code"] for g in resource["group"] for p in g["population"] for c in p["code"]["coding"]
        }
        assert set(result.populations) <= declared_populations, resource["id"]
