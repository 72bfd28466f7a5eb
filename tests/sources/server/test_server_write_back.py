"""Write-back of MeasureReports to the real sekmet-fhir: conditional create, never a duplicate."""

from __future__ import annotations

import copy

import pytest

from fhir_pts.codes import MEASURE_BASE
from fhir_pts.sources.server.http import AuthorizationError, FhirSession, ServerError, check
from fhir_pts.sources.server.write_back import REPORT_ID_SYSTEM, write_back
from tests.sources.server.sekmet_harness import ServerInfo

pytestmark = pytest.mark.server

MEASURE_IDS = ("cohort", "technical-success", "primary-patency")


def measure_report(measure_id: str, value: int) -> dict:
    return {
        "resourceType": "MeasureReport", "status": "complete", "type": "summary",
        "measure": f"{MEASURE_BASE}/{measure_id}", "date": "2026-11-25T12:00:00Z",
        "period": {"start": "2021-01-04", "end": "2023-06-30"},
        "group": [{"population": [{"code": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": "initial-population"}]},
            "count": value}]}],
    }


def measure(measure_id: str) -> dict:
    return {"resourceType": "Measure", "url": f"{MEASURE_BASE}/{measure_id}", "status": "active",
            "name": measure_id.replace("-", "_"), "version": "0.1.0"}


def reports_bundle(value: int = 12) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": measure_report(m, value)} for m in MEASURE_IDS]}


def search(session: FhirSession, base: str, rtype: str, **params: str) -> list[dict]:
    r = check(session.get(f"{base}/{rtype}", params=params, headers={"Prefer": "handling=strict"}), base)
    return [e["resource"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") == "match"]


def test_write_back_twice_leaves_one_report_per_measure(sekmet: ServerInfo, admin: FhirSession) -> None:
    measures = [measure(m) for m in MEASURE_IDS]
    # The session's server may already hold some of these Measures (the CLI write-back test loads them).
    already = sum(bool(search(admin, sekmet.base_url, "Measure", url=f"{MEASURE_BASE}/{m}")) for m in MEASURE_IDS)
    first = write_back(admin, sekmet.base_url, reports_bundle(), measures)
    assert len(first.created) == 2 * len(MEASURE_IDS) - already and len(first.unchanged) == already
    assert "created   MeasureReport/" in first.render()
    second = write_back(admin, sekmet.base_url, copy.deepcopy(reports_bundle()), measures)
    assert not second.created and len(second.unchanged) == 2 * len(MEASURE_IDS)
    assert second.identifiers == first.identifiers
    for m in MEASURE_IDS:
        value = first.identifiers[f"{MEASURE_BASE}/{m}"]
        found = search(admin, sekmet.base_url, "MeasureReport", identifier=f"{REPORT_ID_SYSTEM}|{value}")
        assert len(found) == 1
        assert len(search(admin, sekmet.base_url, "Measure", url=f"{MEASURE_BASE}/{m}")) == 1
    # new inputs (other numbers) -> a new report beside the old one, nothing overwritten
    third = write_back(admin, sekmet.base_url, reports_bundle(13), measures)
    assert len(third.created) == len(MEASURE_IDS)
    assert len(search(admin, sekmet.base_url, "MeasureReport", measure=f"{MEASURE_BASE}/cohort")) == 2


def test_measure_update_only_with_if_match(sekmet: ServerInfo, admin: FhirSession) -> None:
    m = measure("villalta")
    write_back(admin, sekmet.base_url, {"resourceType": "Bundle", "type": "collection"}, [m])
    changed = {**m, "version": "0.2.0"}
    kept = write_back(admin, sekmet.base_url, {"resourceType": "Bundle", "type": "collection"}, [changed])
    assert kept.unchanged and not kept.updated
    updated = write_back(admin, sekmet.base_url, {"resourceType": "Bundle", "type": "collection"}, [changed],
                         update_measures=True)
    assert len(updated.updated) == 1
    [stored] = search(admin, sekmet.base_url, "Measure", url=m["url"])
    assert stored["version"] == "0.2.0" and stored["meta"]["versionId"] == "2"


def test_write_back_with_read_only_client_is_refused(sekmet: ServerInfo, reader: FhirSession) -> None:
    with pytest.raises(AuthorizationError, match=r"forbids transaction \(MeasureReport, Measure\) \(403\)"):
        write_back(reader, sekmet.base_url, reports_bundle(99))


def test_write_back_refuses_other_resources(sekmet: ServerInfo, admin: FhirSession) -> None:
    bad = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient"}}]}
    with pytest.raises(ServerError, match="non-MeasureReport entries: \\['Patient'\\]"):
        write_back(admin, sekmet.base_url, bad)
