"""ConceptMap translation, and adapters matching local codes through it."""

from __future__ import annotations

import json

import pytest

from fhir_pts import codes
from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.concept_map import ConceptMapTranslator
from fhir_pts.sources.files import InputError

from .factories import PTS, bundle, cc, concept_map, observation, procedure

LOCAL = "urn:oid:1.2.250.1.213.2.5"  # a site-local procedure code system


@pytest.mark.parametrize(
    ("equivalence", "maps"),
    [("equivalent", True), ("equal", True), ("wider", True), ("narrower", True), ("subsumes", True),
     ("relatedto", True), ("inexact", True), ("specializes", True), ("unmatched", False), ("disjoint", False)],
)  # fmt: skip
def test_every_equivalence_maps_except_unmatched_and_disjoint(equivalence, maps):
    translator = ConceptMapTranslator.from_resources(
        [concept_map(LOCAL, codes.CPT, [("EPLF001", "37238", equivalence)])]
    )
    assert translator.translate(LOCAL, "EPLF001") == ([(codes.CPT, "37238")] if maps else [])


def test_translate_unknown_code_or_system_is_empty():
    translator = ConceptMapTranslator.from_resources(
        [concept_map(LOCAL, codes.CPT, [("EPLF001", "37238", "equivalent")])]
    )
    assert translator.translate(LOCAL, "OTHER") == [] and translator.translate("urn:other", "EPLF001") == []
    assert translator.source_codes == {"EPLF001"}


def test_from_files_reads_a_concept_map_and_a_bundle_of_them(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps(concept_map(LOCAL, codes.CPT, [("A", "37238", "equivalent")])))
    several = tmp_path / "several.json"
    several.write_text(json.dumps(bundle([concept_map("urn:ok", codes.SNOMED, [("OK", "385669000", "equal")], "cm2")])))
    translator = ConceptMapTranslator.from_files([one, several])
    assert translator.translate(LOCAL, "A") == [(codes.CPT, "37238")]
    assert translator.translate("urn:ok", "OK") == [(codes.SNOMED, "385669000")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"resourceType": "Patient"}), "expected a FHIR ConceptMap"),
        (json.dumps({"resourceType": "ConceptMap", "id": "x"}), "'group'"),
        (json.dumps({"resourceType": "ConceptMap", "id": "x", "group": [{"source": LOCAL}]}), "'target'"),
        (
            json.dumps({"resourceType": "ConceptMap", "group": [{"source": "a", "target": "b", "element": [{}]}]}),
            "code",
        ),
        (json.dumps(bundle([])), "no ConceptMap"),
    ],
)
def test_bad_concept_map_file_is_an_input_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as raised:
        ConceptMapTranslator.from_files([path])
    assert str(path) in str(raised.value)


def test_missing_concept_map_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        ConceptMapTranslator.from_files([tmp_path / "absent.json"])


def test_local_procedure_code_matches_through_the_map():
    translator = ConceptMapTranslator.from_resources(
        [
            concept_map(LOCAL, codes.ICD10PCS, [("STENT-ILIAC-G", "067D3DZ", "equivalent")], "cm1"),
            concept_map("urn:local:outcome", codes.SNOMED, [("OK", "385669000", "equivalent")], "cm2"),
            concept_map("urn:local:site", codes.SNOMED, [("FEM", "397364003", "wider")], "cm3"),
        ]
    )
    resource = procedure(code=[(LOCAL, "STENT-ILIAC-G")], outcome=[("urn:local:outcome", "OK")],
                         body_sites=[("urn:local:site", "FEM")])  # fmt: skip
    assert adapt_resource(resource).relevant is False  # not without the map
    [fact] = adapt_resource(resource, translator).facts
    assert fact.is_stenting and fact.outcome == "success" and fact.segments == {"femoral_vein"}


def test_unmatched_local_code_does_not_match():
    translator = ConceptMapTranslator.from_resources([concept_map(LOCAL, codes.CPT, [("X", "37238", "unmatched")])])
    assert adapt_resource(procedure(code=[(LOCAL, "X")]), translator).relevant is False


def test_local_patency_codes_match_through_the_map():
    translator = ConceptMapTranslator.from_resources(
        [
            concept_map("urn:local:obs", PTS, [("PATENCY", "stent-patency", "equivalent")], "a"),
            concept_map("urn:local:val", PTS, [("OCC", "occluded", "equivalent")], "b"),
        ]
    )
    resource = observation(code=("urn:local:obs", "PATENCY"), valueCodeableConcept=cc(("urn:local:val", "OCC")))
    [fact] = adapt_resource(resource, translator).facts
    assert fact.status == "occluded"
