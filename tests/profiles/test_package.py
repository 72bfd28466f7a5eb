"""The packaged FHIR package (src/fhir_pts/data/profiles) against the contract constants, both ways.

Every project code of codes.py is in the package and every code of the package is used by the code; the
ValueSets hold exactly the codes the adapters recognise; the Questionnaires carry exactly the contract's linkIds
and CIVIQ-20 dimensions; there is one Measure per contract measure id, agreeing with the built-in analyses.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, get_args

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_pts import codes, conformance
from fhir_pts.analyses import descriptive, patency, regression, scores
from fhir_pts.instruments.scoring import VillaltaClass
from tests.contract import CONTRACT_MEASURES

BASE = codes.CANONICAL_BASE


def _codings(value: Any) -> set[tuple[str, str]]:
    """Every (system, code) pair found in a codes.py constant (tuples, sets and dict keys)."""
    found: set[tuple[str, str]] = set()
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        if value[0].startswith(("http://", "https://")):
            found.add(value)
    elif isinstance(value, frozenset | set | tuple | list):
        for item in value:
            found |= _codings(item)
    elif isinstance(value, dict):
        for key in value:
            found |= _codings(key)
    return found


def _code_constants() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for name in dir(codes):
        if name.isupper():
            found |= _codings(getattr(codes, name))
    return found


def _concepts(url: str) -> set[str]:
    return {c["code"] for c in conformance.load_package()[url]["concept"]}


def _valueset(vs_id: str) -> set[tuple[str, str]]:
    vs = conformance.load_package()[f"{BASE}/ValueSet/{vs_id}"]
    return {(inc["system"], c["code"]) for inc in vs["compose"]["include"] if "concept" in inc for c in inc["concept"]}


def test_helper_finds_codings() -> None:
    assert _codings(frozenset({("http://a", "1"), ("http://b", "2")})) == {("http://a", "1"), ("http://b", "2")}
    assert _codings({("https://c", "3"): "x"}) == {("https://c", "3")}
    assert _codings(("pain", "cramps")) == set()


def test_every_project_code_of_codes_py_is_in_the_code_system_and_back() -> None:
    in_code = {code for system, code in _code_constants() if system == codes.PTS_SYSTEM}
    assert in_code, "codes.py names no project code: the helper is broken"
    assert _concepts(codes.PTS_SYSTEM) == in_code


def test_villalta_class_code_system_matches_the_scoring() -> None:
    assert _concepts(f"{BASE}/CodeSystem/villalta-class") == set(get_args(VillaltaClass))


def test_civiq20_dimension_code_system_matches_codes_py() -> None:
    assert _concepts(f"{BASE}/CodeSystem/civiq20-dimension") == set(codes.CIVIQ20_DIMENSIONS)


@pytest.mark.parametrize(
    ("vs_id", "expected"),
    [
        ("index-stenting", codes.VENOUS_STENTING),
        ("technical-success", codes.TECHNICAL_SUCCESS),
        ("technical-failure", codes.TECHNICAL_FAILURE),
        ("technical-outcome", codes.TECHNICAL_SUCCESS | codes.TECHNICAL_FAILURE),
        ("patency-status", frozenset(codes.PATENCY_VALUE)),
        ("reintervention-reason", frozenset({codes.REASON_STENOSIS, codes.REASON_OCCLUSION})),
        ("stented-segment", frozenset((codes.SNOMED, c) for c in codes.SNOMED_SEGMENT)),
        ("imaging-method", frozenset(codes.IMAGING_METHOD)),
        (
            "observation-status-accepted",
            frozenset(("http://hl7.org/fhir/observation-status", s) for s in codes.OBSERVATION_STATUSES),
        ),
    ],
)
def test_value_set_holds_exactly_the_recognised_codes(vs_id: str, expected: frozenset[tuple[str, str]]) -> None:
    assert _valueset(vs_id) == set(expected)


def test_reintervention_value_set_matches_codes_py() -> None:
    vs = conformance.load_package()[f"{BASE}/ValueSet/reintervention"]
    assert _valueset("reintervention") == set(codes.REINTERVENTION)
    assert {v for inc in vs["compose"]["include"] for v in inc.get("valueSet", [])} == {
        f"{BASE}/ValueSet/index-stenting"
    }
    (pattern,) = [f["value"] for inc in vs["compose"]["include"] for f in inc.get("filter", [])]
    assert pattern == "06[7C].3ZZ"
    prefixes = {p for p, _ in codes.ICD10PCS_REINTERVENTION_PREFIXES}
    suffixes = {s for _, s in codes.ICD10PCS_REINTERVENTION_PREFIXES}
    assert prefixes == {"067", "06C"} and suffixes == {"3ZZ"}


def test_concept_map_template_targets_project_codes() -> None:
    cm = conformance.load_package()[f"{BASE}/ConceptMap/local-codes-template"]
    targets = {
        (group["target"], t["code"])
        for group in cm["group"]
        for e in group["element"]
        for t in e["target"]
        if "code" in t
    }
    assert targets and targets <= _code_constants()


def _items(q: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in q.get("item", []):
        out.append(item)
        out.extend(_items(item))
    return out


def test_villalta_questionnaire_link_ids_and_answers() -> None:
    q = conformance.questionnaire("villalta")
    assert q["url"] == codes.VILLALTA_QUESTIONNAIRE and q["version"] == "1.0"
    answerable = [i for i in _items(q) if not i.get("readOnly")]
    assert [i["linkId"] for i in answerable] == [*codes.VILLALTA_ITEMS, codes.VILLALTA_ULCER_ITEM]
    for item in answerable[:-1]:
        codes_and_weights = [
            (o["valueCoding"]["code"], o["extension"][0]["valueDecimal"]) for o in item["answerOption"]
        ]
        assert codes_and_weights == [("0", 0), ("1", 1), ("2", 2), ("3", 3)]
        assert item["answerOption"][0]["extension"][0]["url"] == "http://hl7.org/fhir/StructureDefinition/itemWeight"
    assert answerable[-1]["type"] == "boolean"


def test_civiq20_questionnaire_link_ids_and_dimensions() -> None:
    q = conformance.questionnaire(codes.CIVIQ20_QUESTIONNAIRE + "|1.0")
    answerable = [i for i in _items(q) if not i.get("readOnly")]
    assert tuple(i["linkId"] for i in answerable) == codes.CIVIQ20_ITEMS
    dimensions: dict[str, list[str]] = {}
    for item in answerable:
        (coding,) = item["code"]
        assert coding["system"] == f"{BASE}/CodeSystem/civiq20-dimension"
        dimensions.setdefault(coding["code"], []).append(item["linkId"])
        assert [o["valueCoding"]["code"] for o in item["answerOption"]] == ["1", "2", "3", "4", "5"]
        assert [o["extension"][0]["valueDecimal"] for o in item["answerOption"]] == [1, 2, 3, 4, 5]
    assert {k: tuple(v) for k, v in dimensions.items()} == codes.CIVIQ20_DIMENSIONS


def _total_expression(q: dict[str, Any]) -> str:
    (item,) = [i for i in _items(q) if i.get("readOnly")]
    (ext,) = item["extension"]
    assert ext["url"] == "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
    return ext["valueExpression"]["expression"]


def test_calculated_totals_evaluate_as_fhirpath() -> None:
    fhirpathpy = pytest.importorskip("fhirpathpy", reason="fhirpathpy is not installed")
    from fhirpathpy.models import models

    villalta = _total_expression(conformance.questionnaire("villalta"))
    answers = [
        {"linkId": name, "answer": [{"valueCoding": {"code": str(i % 4)}}]}
        for i, name in enumerate(codes.VILLALTA_ITEMS)
    ]
    answers[0] = {"linkId": "pain", "answer": [{"valueInteger": 3}]}  # valueInteger is accepted too
    answers.append({"linkId": "ulcer", "answer": [{"valueBoolean": True}]})  # never added
    qr = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": answers}
    expected = 3 + sum(i % 4 for i in range(1, 11))
    assert fhirpathpy.evaluate(qr, villalta, {"resource": qr}, models["r4"]) == [expected]
    qr["item"] = answers[1:]  # an item missing: no total
    assert fhirpathpy.evaluate(qr, villalta, {"resource": qr}, models["r4"]) == []

    civiq = _total_expression(conformance.questionnaire("civiq-20"))
    items = [
        {"linkId": name, "answer": [{"valueCoding": {"code": str(1 + i % 5)}}]}
        for i, name in enumerate(codes.CIVIQ20_ITEMS)
    ]
    qr = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}
    assert fhirpathpy.evaluate(qr, civiq, {"resource": qr}, models["r4"]) == [sum(1 + i % 5 for i in range(20))]


def test_one_measure_per_contract_measure_id() -> None:
    measures = {r["id"]: r for r in conformance.load_package().values() if r["resourceType"] == "Measure"}
    assert set(measures) == set(CONTRACT_MEASURES)
    for measure_id, m in measures.items():
        assert m["url"] == f"{codes.MEASURE_BASE}/{measure_id}"
        assert m["version"] == "0.1.0"
        assert conformance.measure(measure_id) == m
        populations = {c["code"] for p in m["group"][0]["population"] for c in p["code"]["coding"]}
        assert "initial-population" in populations


def _notation(m: dict[str, Any]) -> str | None:
    return m["improvementNotation"]["coding"][0]["code"] if "improvementNotation" in m else None


@pytest.mark.parametrize(
    "info",
    [*descriptive.ANALYSES, *patency.ANALYSES, *scores.ANALYSES, *regression.ANALYSES],
    ids=lambda info: info.id,
)
def test_measure_agrees_with_the_built_in_analysis(info: Any) -> None:
    m = conformance.measure(info.id)
    assert f"{m['url']}|{m['version']}" == info.measure_canonical
    assert m["scoring"]["coding"][0]["code"] == info.scoring
    assert _notation(m) == info.improvement_notation


def test_unknown_measure_and_questionnaire_raise() -> None:
    with pytest.raises(KeyError):
        conformance.measure("no-such-measure")
    with pytest.raises(KeyError):
        conformance.questionnaire("technical-success")  # a Measure, not a Questionnaire


def _package_files() -> list[str]:
    root = resources.files("fhir_pts").joinpath("data", "profiles")
    return sorted(e.name for e in root.iterdir() if e.name.endswith(".json") and e.name != "package.json")


@pytest.mark.parametrize("name", _package_files())
def test_every_packaged_resource_parses_with_fhir_resources(name: str) -> None:
    data = json.loads(resources.files("fhir_pts").joinpath("data", "profiles", name).read_text(encoding="utf-8"))
    model = get_fhir_model_class(data["resourceType"])
    parsed = model.model_validate(data)
    assert parsed.url == data["url"]
    assert data["url"].startswith(BASE + "/")
    assert name == f"{data['resourceType']}-{data['id']}.json"


def test_package_manifest() -> None:
    manifest = conformance.package_manifest()
    assert manifest["canonical"] == BASE
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert len(_package_files()) == len(conformance.load_package()) >= 30


def test_load_package_returns_copies() -> None:
    first = conformance.load_package()
    first[codes.PTS_SYSTEM]["concept"].clear()
    assert conformance.load_package()[codes.PTS_SYSTEM]["concept"]
