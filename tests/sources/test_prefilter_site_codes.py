"""The byte pre-filter is contract-complete for site codes: no line that can carry a ConceptMap-mapped code is skipped.

Proof by comparison: the same resources, written as NDJSON in every way a serialiser may write them (compact,
spaced, escaped slashes, ASCII-only ``\\u`` escapes, ``resourceType`` not first), one file per type (the Bulk
layout, searched block-wise) and all in one mixed file (searched line by line), read through the pre-filter
with one and with two workers, give exactly the facts that adapting every resource without any filter gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhir_pts import codes
from fhir_pts.adapters.concept_map import ConceptMapTranslator
from fhir_pts.adapters.facts import FactSet
from fhir_pts.engines.local import collect_facts, collect_from_resources
from tests.adapters.factories import cc, concept_map, observation, patient, procedure

LOCAL = "urn:oid:1.2.3.4.5"  # the hospital's own code system
LOCAL_SITES = "https://hospital.example/fhir/CodeSystem/body-sites"


def translator() -> ConceptMapTranslator:
    """Site codes: some with a slash (written ``\\/`` by some serialisers), one non-ASCII (``\\u`` escaped)."""
    return ConceptMapTranslator.from_resources(
        [
            concept_map(LOCAL, codes.CPT, [("STENT-ILIAC", "37238", "equivalent"), ("ST/VEN", "37239", "wider")], "a"),
            concept_map(LOCAL, codes.PTS_SYSTEM, [
                ("STÉNT-PTS", "venous-stenting", "equivalent"),
                ("RE/INT", "reintervention", "equivalent"),
                ("DUPLEX/PAT", "stent-patency", "equivalent"),
                ("VIL-SUM", "villalta-total", "equivalent"),
                ("OCCL", "occluded", "equivalent"),
            ], "b"),
            concept_map(LOCAL_SITES, codes.SNOMED, [("IVC/1", "64131007", "equivalent")], "c"),
        ]
    )


def resources() -> list[dict[str, Any]]:
    """Patients whose every study fact is coded only with site codes, and irrelevant look-alikes."""
    out: list[dict[str, Any]] = []
    stenting = [("STENT-ILIAC",), ("ST/VEN",), ("STÉNT-PTS",)]
    for i in range(12):
        pid = f"p{i}"
        out.append(patient(pid))
        (code,) = stenting[i % 3]
        out.append(
            procedure(
                f"idx{i}", pid, code=[(LOCAL, code)], performed="2020-01-15", body_sites=[(LOCAL_SITES, "IVC/1")]
            )
        )
        out.append(procedure(f"re{i}", pid, code=[(LOCAL, "RE/INT")], performed="2020-06-01"))
        out.append(
            observation(f"pat{i}", pid, code=(LOCAL, "DUPLEX/PAT"), effective="2020-05-01",
                        valueCodeableConcept=cc((LOCAL, "OCCL")))
        )  # fmt: skip
        out.append(observation(f"vil{i}", pid, code=(LOCAL, "VIL-SUM"), effective="2020-01-10", valueInteger=7 + i))
        out.append(observation(f"hr{i}", pid, code=("http://loinc.org", "8867-4"), valueQuantity={"value": 70}))
        out.append(procedure(f"other{i}", pid, code=[(LOCAL, "XRAY")], performed="2020-02-01"))
    return out


def compact(resource: dict[str, Any]) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


SERIALISERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "compact": compact,
    "spaced": lambda r: json.dumps(r, ensure_ascii=False),
    "escaped slashes": lambda r: compact(r).replace("/", "\\/"),
    "ascii escapes": lambda r: json.dumps(r, ensure_ascii=True, separators=(",", ":")),
    "resourceType last": lambda r: compact(
        {**{k: v for k, v in r.items() if k != "resourceType"}, "resourceType": r["resourceType"]}
    ),
}


def facts_only(facts: FactSet) -> tuple[Any, ...]:
    return (facts.patients, facts.procedures, facts.findings, facts.assessments, facts.adverse_events)


@pytest.mark.parametrize("style", list(SERIALISERS))
@pytest.mark.parametrize("layout", ["one file per type", "mixed"])
def test_site_coded_lines_are_never_skipped(tmp_path: Path, style: str, layout: str) -> None:
    serialise = SERIALISERS[style]
    data = resources()
    folder = tmp_path / "export"
    folder.mkdir()
    if layout == "mixed":
        (folder / "all.ndjson").write_text("".join(serialise(r) + "\n" for r in data), encoding="utf-8")
    else:
        for resource_type in sorted({r["resourceType"] for r in data}):
            lines = [serialise(r) + "\n" for r in data if r["resourceType"] == resource_type]
            (folder / f"{resource_type}.ndjson").write_text("".join(lines), encoding="utf-8")
    concepts = translator()
    unfiltered = collect_from_resources(data, concepts)
    # the comparison means something: every patient has its site-coded index procedure, reintervention,
    # patency finding and score, and the look-alikes are there but carry no fact
    assert len(unfiltered.procedures) == 24 and all(p.is_stenting for p in unfiltered.procedures[::2])
    assert len(unfiltered.findings) == 12 and len(unfiltered.assessments) == 12
    for workers in (1, 2):
        filtered = collect_facts([folder], concepts, workers=workers)
        assert facts_only(filtered) == facts_only(unfiltered), (style, layout, workers)
        assert filtered.resources_read == len(data)
    # and without the ConceptMap, the same lines carry nothing (the site codes are what made them count)
    assert collect_facts([folder]).procedures == []
