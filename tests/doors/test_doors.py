"""Every door, one answer: the same site-coded cohort through every door gives the reference's cohort.csv and
results.csv (numbers to a relative 1e-12) — the reference being the cohort as drawn, with the contract's codes.

Doors are listed in ``registry.py`` (files: Bundle, NDJSON, .ndjson.gz, a mixed folder; the host API with
``resources=``; server search with small pages, the ConceptMap as a server canonical and as a file; Bulk
``$export`` at system, Patient and Group level; ``serve``'s ``$evaluate-measure``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from registry import DOORS, SERVER_DOORS, DoorOutput, ResultRow, World, run_cli

from fhir_pts import codes
from fhir_pts.synth.site_codes import SITE_SYSTEM
from fhir_pts.vocabulary import codings


def _same_number(a: str, b: str) -> bool:
    if a == b:
        return True
    if not a or not b:
        return False
    x, y = float(a), float(b)
    return math.isclose(x, y, rel_tol=1e-12, abs_tol=0.0) or (math.isnan(x) and math.isnan(y))


def assert_same_results(got: dict[tuple[str, str], ResultRow], want: dict[tuple[str, str], ResultRow],
                        name: str) -> None:  # fmt: skip
    differing = [(key, got[key], want[key]) for key in want.keys() & got.keys()
                 if not all(_same_number(a, b) for a, b in zip(got[key], want[key], strict=True))]  # fmt: skip
    assert not differing, f"{name}: {len(differing)} statistics differ, e.g. {differing[:3]}"


@pytest.mark.parametrize("name", sorted(DOORS))
def test_every_door_gives_the_reference(name: str, request: pytest.FixtureRequest, reference: DoorOutput,
                                        tmp_path: Path) -> None:  # fmt: skip
    world: World = request.getfixturevalue("world" if name in SERVER_DOORS else "world_files")
    got = DOORS[name](world, tmp_path)
    if got.cohort is not None:
        assert len(got.cohort) == len(reference.cohort or [])
        assert got.cohort == reference.cohort
        assert got.results.keys() == reference.results.keys()
    else:  # serve: MeasureReports only; every statistic they carry must match, and they carry most
        assert got.results.keys() <= reference.results.keys()
        assert len(got.results) >= 0.8 * len(reference.results)
    assert_same_results(got.results, reference.results, name)


def test_the_world_has_every_variant(world_files: World, reference: DoorOutput) -> None:
    """The suite is only as strong as its cohort: every variant the doors must agree on is in it."""
    resources = world_files.resources
    keys = [(r["resourceType"], r["id"]) for r in resources]
    assert len(keys) > len(set(keys)), "no duplicate resource (versions)"
    assert any(r.get("status") == "entered-in-error" for r in resources), "no entered-in-error record"
    assert any(r["resourceType"] == "Observation" and r.get("status") == "preliminary" for r in resources)
    patients = {r["id"] for r in resources if r["resourceType"] == "Patient"}
    assert len(reference.cohort or []) < len(patients), "no patient without an index procedure"
    site = [(rt, c) for r in resources for rt in [r["resourceType"]]
            for element in ("code", "valueCodeableConcept", "outcome", "bodySite", "seriousness", "method")
            for c in codings(r.get(element)) if c[0] == SITE_SYSTEM]  # fmt: skip
    for resource_type in ("Procedure", "Observation", "AdverseEvent"):
        assert any(rt == resource_type for rt, _ in site), f"no site-coded {resource_type}"
    assert any(r["resourceType"] == "QuestionnaireResponse" for r in resources)
    assert any(r["resourceType"] == "Observation" and r.get("valueQuantity", {}).get("code") == "%"
               for r in resources)  # fmt: skip
    index_codes = {c for r in resources if r["resourceType"] == "Procedure" for c in codings(r.get("code"))}
    assert index_codes & {(codes.CPT, "37238"), (codes.ICD10PCS, "067C3DZ"), (codes.PTS_SYSTEM, "venous-stenting")}


def test_without_the_concept_map_site_coded_patients_are_missed(world_files: World, reference: DoorOutput,
                                                                tmp_path: Path) -> None:  # fmt: skip
    """The control: the site codes matter (a door that ignored the ConceptMap would fail the suite)."""
    got = run_cli(["run", str(world_files.bundle)], tmp_path)
    assert len(got.cohort or []) < len(reference.cohort or [])
