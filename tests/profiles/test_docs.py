"""Every JSON example of docs/profiles.md is valid FHIR R4 and says what the page claims about it."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from fhir_pts import codes, conformance
from fhir_pts.adapters.concept_map import ConceptMapTranslator
from fhir_pts.instruments.scoring import score_civiq20, villalta_class, villalta_total
from tests.profiles.doc_examples import doc_examples


def test_the_page_has_one_example_per_kind() -> None:
    kinds = sorted(key.split("/")[0] for key in doc_examples())
    expected = ["ConceptMap", "MeasureReport", *["Observation"] * 3, *["Procedure"] * 2]
    assert kinds == sorted([*expected, "QuestionnaireResponse", "QuestionnaireResponse"])


def test_every_example_parses_as_fhir() -> None:
    for key, resource in doc_examples().items():
        model = get_fhir_model_class(resource["resourceType"])
        assert model.model_validate(resource).id == key.split("/")[1]


def _codings(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept["coding"]}


def _valueset(vs_id: str) -> set[tuple[str, str]]:
    vs = conformance.load_package()[f"{codes.CANONICAL_BASE}/ValueSet/{vs_id}"]
    return {(inc["system"], c["code"]) for inc in vs["compose"]["include"] if "concept" in inc for c in inc["concept"]}


def test_input_examples_use_the_value_sets() -> None:
    ex = doc_examples()
    assert _codings(ex["Procedure/stent-1"]["code"]) <= _valueset("index-stenting")
    assert {c for site in ex["Procedure/stent-1"]["bodySite"] for c in _codings(site)} <= _valueset("stented-segment")
    assert _codings(ex["Procedure/stent-1"]["outcome"]) <= _valueset("technical-outcome")
    assert _codings(ex["Procedure/redo-1"]["code"]) <= set(codes.REINTERVENTION)
    assert _codings(ex["Procedure/redo-1"]["reasonCode"][0]) <= _valueset("reintervention-reason")
    assert _codings(ex["Observation/duplex-1"]["code"]) == {codes.STENT_PATENCY}
    assert _codings(ex["Observation/duplex-1"]["method"]) <= _valueset("imaging-method")
    assert _codings(ex["Observation/villalta-total-1"]["code"]) == {codes.VILLALTA_TOTAL}
    assert _codings(ex["Observation/civiq-total-1"]["code"]) == {codes.CIVIQ20_TOTAL}


def _answers(qr: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in qr["item"]:
        (answer,) = item["answer"]
        value = answer.get("valueCoding", {}).get("code", answer.get("valueInteger", answer.get("valueBoolean")))
        out[item["linkId"]] = int(value) if isinstance(value, str) else value
    return out


def test_questionnaire_response_examples_score_as_stated() -> None:
    ex = doc_examples()
    villalta = ex["QuestionnaireResponse/villalta-1"]
    assert villalta["questionnaire"].split("|")[0] == codes.VILLALTA_QUESTIONNAIRE
    answers = _answers(villalta)
    total = villalta_total(answers)
    assert (total, villalta_class(total, answers["ulcer"])) == (14, "moderate")
    civiq = ex["QuestionnaireResponse/civiq-1"]
    assert civiq["questionnaire"] == codes.CIVIQ20_QUESTIONNAIRE
    score = score_civiq20(_answers(civiq))
    assert score is not None and (score.raw, score.gis) == (41.0, 26.25)


def test_concept_map_example_maps_as_stated() -> None:
    translator = ConceptMapTranslator.from_resources([doc_examples()["ConceptMap/my-hospital-codes"]])
    assert translator.translate("http://hospital.example.org/fhir/CodeSystem/procedures", "VSTENT") == [
        (codes.PTS_SYSTEM, "venous-stenting")
    ]
    assert translator.translate("http://hospital.example.org/fhir/CodeSystem/imaging-results", "STENT-NA") == []


def test_measure_report_example_conforms() -> None:
    report = doc_examples()["MeasureReport/primary-patency-example"]
    assert conformance.check_measure_report(report) == []
    assert report["meta"]["profile"] == [conformance.MEASURE_REPORT_PROFILE]
