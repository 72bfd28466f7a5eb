"""The examples of docs/inputs.md are what the adapters recognise (keeps the documentation honest)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.concept_map import ConceptMapTranslator

DOC = Path(__file__).resolve().parents[2] / "docs" / "inputs.md"


def examples() -> list[dict]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)]


def test_every_resource_example_gives_its_fact():
    found = examples()
    concept_maps = [r for r in found if r["resourceType"] == "ConceptMap"]
    resources = [r for r in found if r["resourceType"] != "ConceptMap"]
    assert len(resources) == 7 and len(concept_maps) == 1
    for resource in resources:
        output = adapt_resource(resource)
        assert len(output.facts) == 1, resource["id"]
        # the questionnaire example is abbreviated: only its missing items are reported
        expected = ["item"] if resource["resourceType"] == "QuestionnaireResponse" else []
        assert [p.field for p in output.problems] == expected, resource["id"]
    translator = ConceptMapTranslator.from_resources(concept_maps)
    assert translator.translate("urn:oid:1.2.250.1.213.2.5", "EPLF002") == [
        ("http://www.cms.gov/Medicare/Coding/ICD10", "067D3DZ")
    ]
