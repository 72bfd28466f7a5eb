"""The random cohort: reproducible, valid R4, realistic proportions, every encoding variety present."""

from __future__ import annotations

import importlib
from collections import Counter
from typing import Any

import pytest

from fhir_pts import codes
from fhir_pts.synth.random_cohort import random_cohort_resources


@pytest.fixture(scope="module")
def cohort() -> list[dict[str, Any]]:
    return list(random_cohort_resources(1500, seed=11))


def test_same_seed_same_resources_other_seed_differs() -> None:
    assert list(random_cohort_resources(30, 5)) == list(random_cohort_resources(30, 5))
    assert list(random_cohort_resources(30, 5)) != list(random_cohort_resources(30, 6))


def test_patient_i_does_not_depend_on_n() -> None:
    small = list(random_cohort_resources(10, 2))
    large = list(random_cohort_resources(20, 2))
    assert large[: len(small)] == small


def test_unique_ids_except_superseded_versions(cohort: list[dict[str, Any]]) -> None:
    keys = Counter((x["resourceType"], x["id"]) for x in cohort)
    duplicated = [k for k, v in keys.items() if v > 1]
    for kind, rid in duplicated:
        versions = [x["meta"]["versionId"] for x in cohort if x["resourceType"] == kind and x["id"] == rid]
        assert versions == ["1", "2"]


def test_every_resource_has_meta_version_and_last_updated(cohort: list[dict[str, Any]]) -> None:
    assert all(x["meta"]["versionId"] and x["meta"]["lastUpdated"].endswith("Z") for x in cohort)


def test_sample_of_each_kind_validates_with_r4b(cohort: list[dict[str, Any]]) -> None:
    per_kind: dict[str, list[dict[str, Any]]] = {}
    for x in cohort:
        bucket = per_kind.setdefault(x["resourceType"], [])
        if len(bucket) < 300:
            bucket.append(x)
    assert set(per_kind) >= {"Patient", "Procedure", "Observation", "QuestionnaireResponse", "Encounter",
                             "Condition", "AdverseEvent"}  # fmt: skip
    for kind, sample in per_kind.items():
        model = getattr(importlib.import_module(f"fhir.resources.R4B.{kind.lower()}"), kind)
        for x in sample:
            model.model_validate(x)


def _codings(cc: dict[str, Any] | None) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in (cc or {}).get("coding", [])}


def test_realistic_proportions(cohort: list[dict[str, Any]]) -> None:
    patients = [x for x in cohort if x["resourceType"] == "Patient"]
    procedures = [x for x in cohort if x["resourceType"] == "Procedure" and x["status"] == "completed"]
    stented = {p["subject"]["reference"] for p in procedures if _codings(p["code"]) & codes.VENOUS_STENTING}
    assert 0.85 <= len(stented) / len(patients) <= 0.95
    failures = {p["subject"]["reference"] for p in procedures if _codings(p.get("outcome")) & codes.TECHNICAL_FAILURE
                and _codings(p["code"]) & codes.VENOUS_STENTING}  # fmt: skip
    assert 0.01 <= len(failures) / len(stented) <= 0.06
    # noise dominates the line count, as in a real export
    noise = [x for x in cohort if x["resourceType"] in ("Encounter", "Condition")
             or (x["resourceType"] == "Observation" and x["code"]["coding"][0]["system"] == "http://loinc.org")]
    assert len(noise) / len(cohort) > 0.5


def test_noise_ratio_is_a_parameter() -> None:
    quiet = list(random_cohort_resources(200, 1, noise_per_patient=0))
    loud = list(random_cohort_resources(200, 1, noise_per_patient=40))
    assert not any(x["resourceType"] == "Condition" for x in quiet)
    assert 30 <= (len(loud) - len(quiet)) / 200 <= 50


def _answers(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.extend(item.get("answer", []))
        out.extend(_answers(item.get("item", [])))
    return out


def test_every_encoding_variety_is_present(cohort: list[dict[str, Any]]) -> None:
    codings = Counter(c for x in cohort if x["resourceType"] == "Procedure" for c in _codings(x["code"]))
    assert codings[(codes.CPT, "37238")] and codings[(codes.CPT, "37239")]
    assert codings[(codes.PTS_SYSTEM, "venous-stenting")]
    assert any(s == codes.ICD10PCS and c.endswith("3DZ") for s, c in codings)
    assert any(s == codes.ICD10PCS and c.startswith("06C") for s, c in codings)
    assert {c for s, c in codings if s == codes.CPT} >= set(codes.REINTERVENTION_CPT)
    patency = [x for x in cohort if x["resourceType"] == "Observation" and codes.STENT_PATENCY in _codings(x["code"])]
    assert any("valueQuantity" in x for x in patency) and any("valueCodeableConcept" in x for x in patency)
    assert {x["status"] for x in patency} >= {"final", "amended", "preliminary"}
    qrs = [x for x in cohort if x["resourceType"] == "QuestionnaireResponse"]
    answers = [a for q in qrs for a in _answers(q["item"])]
    assert any("valueCoding" in a for a in answers) and any("valueInteger" in a for a in answers)
    assert any("item" in i for q in qrs for i in q["item"])  # nested groups
    assert any("|" in q["questionnaire"] for q in qrs)
    civiq = [q for q in qrs if q["questionnaire"].startswith(codes.CIVIQ20_QUESTIONNAIRE)]
    civiq_sizes = Counter(len(_answers(q["item"])) for q in civiq)
    assert civiq_sizes[20] and (civiq_sizes[19] or civiq_sizes[18]) and civiq_sizes[17]
    scores = Counter(c for x in cohort if x["resourceType"] == "Observation" for c in _codings(x["code"]))
    assert scores[codes.VILLALTA_TOTAL] and scores[codes.CIVIQ20_TOTAL]
    complications = [c for x in cohort if x["resourceType"] == "Procedure" for cc in x.get("complication", [])
                     for c in _codings(cc)]  # fmt: skip
    assert codes.MAJOR_COMPLICATION in complications
    events = [x for x in cohort if x["resourceType"] == "AdverseEvent"]
    serious = [x for x in events if codes.AE_SERIOUS in _codings(x["seriousness"])]
    assert serious and all(x["suspectEntity"][0]["instance"]["reference"].startswith("Procedure/") for x in serious)
