"""Faults between client and server (429 + Retry-After, 503, dropped connection, slow page, truncated file,
a file that keeps failing): the fetch completes with the same resources, or resumes where it stopped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_pts.sources.server.bulk import STATE_NAME, BulkStats, fetch_by_bulk
from fhir_pts.sources.server.http import FhirSession, RequestRefused, check
from fhir_pts.sources.server.search import SearchStats, fetch_by_search
from tests.sources.server.cohort_factory import expected_keys, read_keys
from tests.sources.server.fault_proxy import Fault, FaultProxy
from tests.sources.server.sekmet_harness import ServerInfo, smart_session

pytestmark = pytest.mark.server


@pytest.fixture
def proxy(sekmet: ServerInfo) -> Iterator[FaultProxy]:
    with FaultProxy(sekmet.root_url) as p:
        yield p


@pytest.fixture
def session(sekmet: ServerInfo) -> FhirSession:
    # the token endpoint is reached directly; every FHIR request goes through the proxy
    return smart_session(sekmet, "reader", "system/*.read", backoff_factor=0.05, backoff_max=0.5)


def test_search_survives_faults(proxy: FaultProxy, session: FhirSession, cohort: list[dict], tmp_path: Path) -> None:
    proxy.faults = [
        Fault("/fhir/Procedure?code=", "429", retry_after="1"),
        Fault("/fhir/Observation?", "503", times=2),
        Fault("/fhir/QuestionnaireResponse?", "drop"),
        Fault("/fhir/AdverseEvent?", "slow", delay=1.0),
        Fault("_offset=3", "503"),  # a later page
    ]
    stats = SearchStats()
    paths = fetch_by_search(session, proxy.base_url, tmp_path, page_size=3, patients_per_request=6, stats=stats)
    assert read_keys(paths) == expected_keys(cohort)
    assert all(f.hits >= 1 for f in proxy.faults)
    refused = next(path for _, path, action in proxy.log if action == "429")
    assert [path for _, path, _ in proxy.log].count(refused) == 2  # the 429, then the same request again
    assert stats.requests == stats.pages  # retries happen below the search logic, pages are not repeated


def test_search_does_not_retry_other_4xx(proxy: FaultProxy, session: FhirSession, cohort: list[dict],
                                         tmp_path: Path) -> None:
    response = session.get(f"{proxy.base_url}/Procedure", params={"no-such-param": "x"},
                           headers={"Prefer": "handling=strict"})
    with pytest.raises(RequestRefused, match=r"400 .* for Procedure .*Unknown search parameter"):
        check(response, proxy.base_url)
    assert proxy.count("no-such-param") == 1


def test_bulk_survives_faults(proxy: FaultProxy, session: FhirSession, cohort: list[dict], tmp_path: Path) -> None:
    proxy.faults = [
        Fault("$export", "503"),
        Fault("/bulk-status/", "429", method="GET", retry_after="1"),
        Fault("/bulk-files/", "drop"),
        Fault("Observation.ndjson", "truncate"),
        Fault("Procedure.ndjson", "slow", delay=1.0),
    ]
    stats = BulkStats()
    paths = fetch_by_bulk(session, proxy.base_url, tmp_path, "patient", stats=stats, poll_cap=0.5)
    assert read_keys(paths) == expected_keys(cohort)
    assert all(f.hits == 1 for f in proxy.faults)
    assert stats.kickoffs == 1
    assert proxy.count("/bulk-status/", "DELETE") == 1


def test_bulk_resumes_after_interrupted_download(proxy: FaultProxy, session: FhirSession, cohort: list[dict],
                                                 tmp_path: Path) -> None:
    proxy.faults = [Fault("QuestionnaireResponse.ndjson", "500", times=None)]
    with pytest.raises(RequestRefused, match="500"):
        fetch_by_bulk(session, proxy.base_url, tmp_path, "system", poll_cap=0.5)
    state = json.loads((tmp_path / STATE_NAME).read_text())
    assert state["manifest"] and len(state["done"]) == len(state["manifest"]["output"]) - 1
    assert not list(tmp_path.glob("*.ndjson"))  # nothing half-made where the pipeline reads
    kickoffs = proxy.count("$export")
    downloads = proxy.count("/bulk-files/")

    proxy.faults = []  # the server is fine again
    stats = BulkStats()
    paths = fetch_by_bulk(session, proxy.base_url, tmp_path, "system", stats=stats, poll_cap=0.5)
    assert read_keys(paths) == expected_keys(cohort)
    assert stats.kickoffs == 0 and proxy.count("$export") == kickoffs  # resumed, not restarted
    assert stats.files_downloaded == 1 and stats.files_resumed == len(state["manifest"]["output"]) - 1
    assert proxy.count("/bulk-files/") == downloads + 1
    assert not (tmp_path / STATE_NAME).exists()


def test_search_falls_back_to_one_patient_per_request(proxy: FaultProxy, session: FhirSession,
                                                      cohort: list[dict], tmp_path: Path) -> None:
    # a server that refuses several patients in one search (patient=a,b,c)
    proxy.faults = [Fault(r"[?&]patient=[^&]*%2C", "400", times=None, regex=True)]
    stats = SearchStats()
    paths = fetch_by_search(session, proxy.base_url, tmp_path, patients_per_request=5, stats=stats)
    assert read_keys(paths) == expected_keys(cohort)
    assert stats.fallbacks == 3 * 4  # 3 batches x 4 types, each crawled patient by patient
