"""Every door, one answer: the same site-coded cohort through every door gives the reference's cohort.csv and
results.csv (numbers to a relative 1e-12) — the reference being the cohort as drawn, with the contract's codes.

Doors are listed in ``registry.py`` (files: Bundle, NDJSON, .ndjson.gz, a mixed folder; the host API with
``resources=``; server search with small pages, the ConceptMap as a server canonical and as a file; Bulk
``$export`` at system, Patient and Group level; ``serve``'s ``$evaluate-measure``; the Spark engine in local
mode on the Bundle, NDJSON, .ndjson.gz and mixed-folder forms).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fhir_pts import codes
from fhir_pts.synth.site_codes import SITE_SYSTEM
from fhir_pts.vocabulary import codings
from tests.doors.registry import DOORS, SERVER_DOORS, SPARK_DOORS, DoorOutput, ResultRow, World, run_cli


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
    if name in SPARK_DOORS:
        request.getfixturevalue("spark_session")
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


def _concept_map_extensions(out: Path) -> list[dict[str, str]]:
    import json

    from fhir_pts.outputs.measure_report import EXT_CONCEPT_MAP_USED

    bundle = json.loads((out / "measure-reports.json").read_text())
    found = []
    for entry in bundle["entry"]:
        used = [e for e in entry["resource"].get("extension", []) if e["url"] == EXT_CONCEPT_MAP_USED]
        found.append([{p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in e["extension"]}
                      for e in used])  # fmt: skip
    assert all(f == found[0] for f in found), "every MeasureReport names the same ConceptMaps"
    return found[0]


def test_the_concept_maps_used_are_in_every_measure_report_and_the_report(world_files: World,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    import hashlib

    from fhir_pts.cli import main

    digest = hashlib.sha256(world_files.concept_map.read_bytes()).hexdigest()
    out = tmp_path / "out"
    assert main(["run", str(world_files.bundle), "--concept-map", str(world_files.concept_map), "--out", str(out),
                 "-q"]) == 0  # fmt: skip
    (used,) = _concept_map_extensions(out)
    assert used["source"] == "file" and used["sha256"] == digest and used["location"] == str(world_files.concept_map)
    assert used["canonical"].endswith("ConceptMap/site-codes-to-fhir-pts|1")
    assert digest in (out / "report.html").read_text()


def test_a_server_canonical_is_named_with_its_server_copy(world: World, tmp_path: Path) -> None:
    DOORS["search"](world, tmp_path)
    (used,) = _concept_map_extensions(tmp_path)
    assert used["source"] == "server" and used["canonical"] == world.canonical
    assert used["location"].startswith(f"{world.server_url}/ConceptMap/site-codes-to-fhir-pts/_history/")
    assert "sha256" not in used


def test_a_canonical_the_server_does_not_hold_is_a_clear_error(world: World, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from fhir_pts.cli import main
    from tests.doors.registry import environment

    assert world.server_url and world.canonical
    wrong = world.canonical.replace("|1", "|9")
    with environment(world.server_env):
        status = main(["run", "--server", world.server_url, "--concept-map", wrong, "--out", str(tmp_path / "o")])
    assert status == 2
    assert f"--concept-map {wrong}: no ConceptMap with this canonical on the server" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.csv").exists()
