"""Servers that silently do less: an ignored ``_include`` (Patients fetched by id, the dropped parameter reported),
URLs too long for GET (POST ``_search``, else the query split — never a code dropped), and a cohort Patient the
server cannot give (a problem row and exit status 3)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from fhir_pts import codes
from fhir_pts.cli import EXIT_INCOMPLETE, main
from fhir_pts.sources.server.bulk import BulkStats, fetch_by_bulk
from fhir_pts.sources.server.http import FhirSession, check
from fhir_pts.sources.server.search import SearchStats, fetch_by_search
from fhir_pts.vocabulary import MapSource, Vocabulary
from tests.sources.server.cohort_factory import cohort_resources, expected_keys, procedure, read_keys, transaction
from tests.sources.server.fault_proxy import Fault, FaultProxy
from tests.sources.server.sekmet_harness import ServerInfo, own_server, smart_session

pytestmark = pytest.mark.server


@pytest.fixture
def proxy(sekmet: ServerInfo) -> Iterator[FaultProxy]:
    with FaultProxy(sekmet.root_url) as p:
        yield p


def test_ignored_include_patients_fetched_by_id_and_reported(proxy: FaultProxy, reader: FhirSession,
                                                             cohort: list[dict], tmp_path: Path) -> None:  # fmt: skip
    proxy.faults = [Fault("/fhir/Procedure", "ignore-param", times=None, param="_include")]
    stats = SearchStats()
    paths = fetch_by_search(reader, proxy.base_url, tmp_path, stats=stats)
    assert read_keys(paths) == expected_keys(cohort)  # every Patient there, fetched by _id
    assert proxy.count("/fhir/Patient?") >= 1
    assert stats.dropped_parameters == {"Procedure": ["_include"]}
    (problem,) = stats.problems
    assert problem.severity == "warning" and problem.field == "_include" and not stats.incomplete


def _long_vocabulary(n: int = 400) -> Vocabulary:
    """A vocabulary whose Observation codes alone make a URL of ~20 kB."""
    concept_map = {"resourceType": "ConceptMap", "group": [{
        "source": "https://hospital.example.org/fhir/CodeSystem/lab", "target": codes.PTS_SYSTEM,
        "element": [{"code": f"DUPLEX-{i:05d}", "target": [{"code": "stent-patency", "equivalence": "equivalent"}]}
                    for i in range(n)]}]}  # fmt: skip
    return Vocabulary.from_resources([(concept_map, MapSource("file", "memory"))])


def test_long_queries_are_posted_never_shortened(sekmet: ServerInfo, reader: FhirSession, cohort: list[dict],
                                                 tmp_path: Path) -> None:  # fmt: skip
    stats = SearchStats()
    paths = fetch_by_search(reader, sekmet.base_url, tmp_path, stats=stats, vocabulary=_long_vocabulary())
    assert read_keys(paths) == expected_keys(cohort)
    assert stats.posted >= 1 and stats.split == 0


def test_long_queries_are_split_when_post_search_is_refused(proxy: FaultProxy, reader: FhirSession,
                                                            cohort: list[dict], tmp_path: Path) -> None:  # fmt: skip
    proxy.faults = [Fault("/_search", "405", times=None, method="POST")]
    stats = SearchStats()
    paths = fetch_by_search(reader, proxy.base_url, tmp_path, stats=stats, vocabulary=_long_vocabulary())
    assert read_keys(paths) == expected_keys(cohort)
    assert stats.split >= 1
    observation_gets = [p for m, p, _ in proxy.log if m == "GET" and p.startswith("/fhir/Observation?")]
    assert len(observation_gets) >= 8  # ~20 kB of codes in parts of < 2 kB
    assert all(len(p) < 2100 for p in observation_gets)


# ------------------------------------------------------------------ a server that lacks a cohort Patient
@pytest.fixture(scope="module")
def ghost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """A server of its own whose data has an index Procedure of a Patient it does not hold."""
    with own_server(tmp_path_factory.mktemp("ghost-sekmet")) as info:
        resources = cohort_resources(n_patients=3, n_others=1, prefix="g")
        resources.append(procedure("ghost-idx", "ghost", codes.CPT, "37238", date(2021, 5, 3)))  # no Patient/ghost
        check(smart_session(info).post(info.base_url, json=transaction(resources),
                                       headers={"Content-Type": "application/fhir+json"}))  # fmt: skip
        yield info


def test_a_patient_the_server_cannot_give_is_a_problem(ghost_server: ServerInfo, tmp_path: Path) -> None:
    session = smart_session(ghost_server, "reader", "system/*.read")
    stats = SearchStats()
    fetch_by_search(session, ghost_server.base_url, tmp_path / "search", stats=stats)
    assert stats.incomplete and [(p.resource_type, p.resource_id) for p in stats.problems] == [("Patient", "ghost")]
    bulk = BulkStats()
    fetch_by_bulk(session, ghost_server.base_url, tmp_path / "bulk", "system", stats=bulk, poll_cap=0.5)
    assert bulk.incomplete and [(p.resource_type, p.resource_id) for p in bulk.problems] == [("Patient", "ghost")]


@pytest.mark.parametrize("mode", [[], ["--bulk"]])
def test_cli_exit_status_3_and_a_problem_row(ghost_server: ServerInfo, tmp_path: Path, mode: list[str],
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("FHIR_PTS_CLIENT_ID", ghost_server.reader.client_id)
    monkeypatch.setenv("FHIR_PTS_PRIVATE_KEY", str(ghost_server.reader.private_key))
    out = tmp_path / "out"
    status = main(["run", "--server", ghost_server.base_url, *mode, "--out", str(out), "--no-report", "-q"])
    assert status == EXIT_INCOMPLETE == 3
    assert "could not give" in capsys.readouterr().err
    with (out / "problems.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["resource_id"] == "ghost"]
    assert rows and rows[0]["resource_type"] == "Patient" and rows[0]["severity"] == "skipped"
    assert (out / "results.csv").exists()  # the run completed; the exit status says it is incomplete
