"""Bulk Data $export against the real sekmet-fhir: same resources as search mode, system and Patient level."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_pts.sources.server.bulk import STATE_NAME, BulkStats, fetch_by_bulk
from fhir_pts.sources.server.http import FhirSession, check
from tests.sources.server.cohort_factory import expected_keys, read_keys
from tests.sources.server.run_tables import differences, read_tables
from tests.sources.server.sekmet_harness import ServerInfo

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


@pytest.mark.parametrize("level", ["system", "patient"])
def test_cli_bulk_same_numbers_as_files(sekmet: ServerInfo, cohort: list[dict], tmp_path: Path, level: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The happy path on the real server: the plan from its CapabilityStatement, $export, the same numbers."""
    import csv
    import json

    from fhir_pts.cli import EXIT_OK, main

    data = tmp_path / "files"
    data.mkdir()
    (data / "cohort.ndjson").write_text("".join(json.dumps(r) + "\n" for r in cohort))
    assert main(["run", str(data), "--out", str(tmp_path / "files-out"), "--no-report", "-q"]) == EXIT_OK
    monkeypatch.setenv("FHIR_PTS_CLIENT_ID", sekmet.reader.client_id)
    monkeypatch.setenv("FHIR_PTS_PRIVATE_KEY", str(sekmet.reader.private_key))
    out = tmp_path / "bulk-out"
    assert main(["run", "--server", sekmet.base_url, "--bulk", "--export-level", level, "--out", str(out),
                 "--no-report", "-q"]) == EXIT_OK
    assert differences(read_tables(out), read_tables(tmp_path / "files-out")) == []
    assert not [p for p in csv.DictReader((out / "problems.csv").open()) if p["field"].startswith("(")]
