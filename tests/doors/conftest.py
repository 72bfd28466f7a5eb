"""The one cohort every door reads: synthetic, with site-local codes, in every file form and in a real FHIR server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from fhir_pts.adapters.common import VersionKey
from fhir_pts.sources.server.http import FhirSession, check
from fhir_pts.synth import random_cohort_resources, synthesize
from fhir_pts.synth.site_codes import SiteCoder
from fhir_pts.synth.writer import write_bundle, write_json, write_ndjson
from tests.doors.registry import DoorOutput, World, run_cli
from tests.sources.server.sekmet_harness import own_server, smart_session

#: The cohort: 60 random patients (seed 6: superseded versions, entered-in-error records, patients without
#: stenting, every encoding of contract §1; checked by test_the_world_has_every_variant), little noise.
PATIENTS, SEED, NOISE = 60, 6, 4.0


def _cohort(site_codes: Path | None) -> list[dict]:
    resources = random_cohort_resources(PATIENTS, SEED, noise_per_patient=NOISE)
    if site_codes is None:
        return list(resources)
    coder = SiteCoder()
    recoded = list(coder.recode_all(resources))
    write_json(coder.concept_map(), site_codes)
    return recoded


@pytest.fixture(scope="session")
def world_files(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The site-coded cohort in every file form, and its ConceptMap."""
    root = tmp_path_factory.mktemp("doors")
    concept_map = root / "site-codes.conceptmap.json"
    resources = _cohort(concept_map)
    bundle = root / "cohort.json"
    write_bundle(iter(resources), bundle, bundle_id="doors")
    ndjson = root / "mixed" / "cohort.ndjson"
    ndjson.parent.mkdir()
    ndjson.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    gz_folder = root / "gz"
    write_ndjson(iter(resources), gz_folder, compress=True)
    folder = root / "folder"
    write_ndjson((r for r in resources if r["resourceType"] != "QuestionnaireResponse"), folder)
    write_bundle((r for r in resources if r["resourceType"] == "QuestionnaireResponse"), folder / "qr.json")
    return World(root, concept_map, bundle, ndjson, gz_folder, folder, resources)


@pytest.fixture(scope="session")
def reference(world_files: World) -> DoorOutput:
    """The cohort as drawn (contract codes, no ConceptMap), read from a Bundle: what every door must give."""
    bundle = world_files.root / "as-drawn.json"
    synthesize(bundle, patients=PATIENTS, seed=SEED, fmt="bundle", noise_per_patient=NOISE)
    return run_cli(["run", str(bundle)], world_files.root / "reference")


def _load(admin: FhirSession, base_url: str, resources: list[dict]) -> None:
    """PUT the resources in transactions; of several copies of one resource, the contract's winner goes last
    (the server keeps it as the current version, as the files door picks it)."""
    copies: dict[tuple[str, str], list[dict]] = {}
    for resource in resources:
        copies.setdefault((resource["resourceType"], resource["id"]), []).append(resource)
    rounds: list[list[dict]] = [[], []]
    for versions in copies.values():
        winner = versions[0]
        for later in versions[1:]:
            if VersionKey.of(later).wins_over(VersionKey.of(winner)):
                winner = later
        rounds[0].extend(v for v in versions if v is not winner)
        rounds[1].append(winner)
    for batch in rounds:
        if not batch:
            continue
        body = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in batch]}
        check(admin.post(base_url, data=json.dumps(body), headers={"Content-Type": "application/fhir+json"}),
              base_url, "transaction")  # fmt: skip


@pytest.fixture(scope="session")
def world(world_files: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The files, plus a sekmet-fhir of its own holding the cohort, the ConceptMap (as a canonical) and a Group."""
    with own_server(tmp_path_factory.mktemp("doors-sekmet")) as info:
        admin = smart_session(info)
        _load(admin, info.base_url, world_files.resources)
        concept_map = json.loads(world_files.concept_map.read_text())
        check(admin.put(f"{info.base_url}/ConceptMap/{concept_map['id']}", json=concept_map,
                        headers={"Content-Type": "application/fhir+json"}))  # fmt: skip
        patients = sorted({r["id"] for r in world_files.resources if r["resourceType"] == "Patient"})
        group = {"resourceType": "Group", "id": "doors", "type": "person", "actual": True,
                 "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patients]}  # fmt: skip
        check(admin.put(f"{info.base_url}/Group/doors", json=group, headers={"Content-Type": "application/fhir+json"}))
        world_files.server_url = info.base_url
        world_files.server_env = {"FHIR_PTS_CLIENT_ID": info.reader.client_id,
                                  "FHIR_PTS_PRIVATE_KEY": str(info.reader.private_key)}  # fmt: skip
        world_files.canonical = f"{concept_map['url']}|{concept_map['version']}"
        world_files.group_id = "doors"
        yield world_files
