"""Bulk Data $export against the real sekmet-fhir: same resources as search mode, system and Patient level."""

from __future__ import annotations

from pathlib import Path

import pytest
from cohort_factory import expected_keys
from sekmet_harness import ServerInfo
from test_server_search import read_keys

from fhir_pts.sources.server.bulk import STATE_NAME, BulkStats, fetch_by_bulk
from fhir_pts.sources.server.http import FhirSession, check

pytestmark = pytest.mark.server


@pytest.mark.parametrize("level", ["system", "patient"])
def test_bulk_gives_the_cohort(sekmet: ServerInfo, cohort: list[dict], reader: FhirSession, tmp_path: Path,
                               level: str) -> None:
    stats = BulkStats()
    paths = fetch_by_bulk(reader, sekmet.base_url, tmp_path, level, stats=stats, poll_cap=0.5)
    assert read_keys(paths) == expected_keys(cohort)
    assert stats.kickoffs == 1 and stats.files_downloaded >= 4 and stats.polls >= 1
    assert not (tmp_path / STATE_NAME).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_bulk_raw_files_kept_when_not_selecting(sekmet: ServerInfo, cohort: list[dict], reader: FhirSession,
                                                tmp_path: Path) -> None:
    paths = fetch_by_bulk(reader, sekmet.base_url, tmp_path, "system", select_cohort=False, poll_cap=0.5)
    keys = read_keys_any(paths)
    assert expected_keys(cohort) < keys  # everything exported, the other patients too
    assert ("Patient", "to0") in keys and ("Condition", "tp0-cond") not in keys  # _type honoured
    assert ("Observation", "tp0-hr") not in keys  # _typeFilter honoured


def read_keys_any(paths: list[Path]) -> set[tuple[str, str]]:
    import json

    return {(r["resourceType"], r["id"]) for p in paths for r in map(json.loads, p.read_text().splitlines())}


def test_bulk_group_level(sekmet: ServerInfo, cohort: list[dict], admin: FhirSession, reader: FhirSession,
                          tmp_path: Path) -> None:
    members = ["tp0", "tp1", "tp5", "to1"]  # three of the cohort and one patient without stenting
    group = {"resourceType": "Group", "id": "pts-group", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members]}
    check(admin.put(f"{sekmet.base_url}/Group/pts-group", json=group,
                    headers={"Content-Type": "application/fhir+json"}))
    paths = fetch_by_bulk(reader, sekmet.base_url, tmp_path, "group", "pts-group", poll_cap=0.5)
    in_group = [r for r in cohort if (r["id"] if r["resourceType"] == "Patient" else
                                      r.get("subject", {}).get("reference", "/").split("/")[1]) in members]
    assert read_keys(paths) == expected_keys(in_group)
