"""Bulk Data as real servers speak it, against a misbehaving loopback Bulk server (``bulk_server.py``).

Each test runs ``fhir-pts run --server URL --bulk`` end to end (SMART Backend Services, ES384) against one
misbehaviour and checks the exit status, the problems.csv rows and the numbers: results.csv and cohort.csv must
equal what the files door computes on the data the server could actually provide. Nothing is lost silently.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fhir_pts import codes
from fhir_pts.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main
from fhir_pts.outputs.measure_report import EXT_DATA_INCOMPLETE
from fhir_pts.synth import synthesize
from tests.sources.server.bulk_server import BulkServer, Faults
from tests.sources.server.run_tables import differences, read_tables
from tests.sources.server.sekmet_harness import make_keys

CLIENT = "bulk-client"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keys(tmp_path_factory.mktemp("bulk-keys"))


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """A random 24-patient cohort with a little noise: every type of the contract, site-code free."""
    folder = tmp_path_factory.mktemp("bulk-cohort")
    synthesize(folder, patients=24, seed=14, fmt="ndjson", noise_per_patient=2)
    out = [json.loads(line) for path in sorted(folder.glob("*.ndjson")) for line in path.read_text().splitlines()
           if line.strip()]
    stentings = [r for r in out if r["resourceType"] == "Procedure" and r.get("status") == "completed"
                 and {(c.get("system"), c.get("code")) for c in r["code"]["coding"]} & codes.VENOUS_STENTING]
    for i, procedure in enumerate(stentings[:3]):  # synth writes none: serious adverse events of index procedures
        out.append({"resourceType": "AdverseEvent", "id": f"ae-{i}", "actuality": "actual",
                    "subject": procedure["subject"], "date": procedure.get("performedDateTime", "2015-01-01"),
                    "seriousness": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                          "adverse-event-seriousness", "code": "serious"}]},
                    "suspectEntity": [{"instance": {"reference": f"Procedure/{procedure['id']}"}}]})
    assert {"Patient", "Procedure", "Observation", "QuestionnaireResponse", "AdverseEvent"} <= {
        r["resourceType"] for r in out}
    return out


def _files_door(resources: Sequence[dict], folder: Path) -> dict[str, list[dict]]:
    """results.csv and cohort.csv of ``fhir-pts run`` on the resources as NDJSON files."""
    data = folder / "input"
    data.mkdir(parents=True)
    by_type: dict[str, list[str]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for rtype, lines in by_type.items():
        (data / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    assert main(["run", str(data), "--out", str(folder / "out"), "--no-report", "-q"]) == EXIT_OK
    return _tables(folder / "out")


SERVER_FIELDS = ("(server)", "(bulk export error)", "(bulk deleted)")


def _tables(out: Path) -> dict[str, list]:
    """results.csv, cohort.csv, and the problems of the records read (not where they were read, not the
    fetch's own rows, which :func:`_problems` gives)."""
    tables: dict[str, list] = dict(read_tables(out))
    tables["problems"] = sorted((p["severity"], p["resource_type"], p["resource_id"], p["field"], p["reason"])
                                for p in csv.DictReader((out / "problems.csv").open())
                                if p["field"] not in SERVER_FIELDS)
    return tables


def _problems(out: Path) -> list[dict]:
    """The fetch's own problems.csv rows."""
    return [p for p in csv.DictReader((out / "problems.csv").open()) if p["field"] in SERVER_FIELDS]


@pytest.fixture(scope="module")
def expected_all(resources: list[dict], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    return _files_door(resources, tmp_path_factory.mktemp("files-door"))


@pytest.fixture
def serve(resources: list[dict], keys: dict[str, Path]) -> Iterator:
    servers: list[BulkServer] = []

    def start(faults: Faults | None = None, data: Sequence[dict] | None = None) -> BulkServer:
        server = BulkServer(resources if data is None else data, keys["full-es"].with_name("full-es.pub.pem"),
                            CLIENT, faults).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def run_bulk(server: BulkServer, keys: dict[str, Path], out: Path, *extra: str, bulk: bool = True) -> int:
    argv = ["run", "--server", server.base_url, "--client-id", CLIENT, "--private-key", str(keys["full-es"]),
            "--out", str(out), *([] if "-v" in extra else ["-q"]), *(["--bulk"] if bulk else []), *extra]
    return main(argv)


def _without(resources: Sequence[dict], types: set[str] = frozenset(), keys: set = frozenset()) -> list[dict]:  # type: ignore[assignment]
    return [r for r in resources if r["resourceType"] not in types and (r["resourceType"], r["id"]) not in keys]


def test_happy_path_same_numbers_as_files(serve, keys, expected_all, tmp_path: Path) -> None:
    server = serve()
    assert run_bulk(server, keys, tmp_path / "out", "--no-report") == EXIT_OK
    assert differences(_tables(tmp_path / "out"), expected_all) == []
    assert _problems(tmp_path / "out") == []
    kick = next(p for m, p, _ in server.log if "$export" in p)
    assert "_typeFilter=" in kick  # the OperationDefinition declares it, and the export was right


@pytest.mark.parametrize("level", ["system", "patient"])
def test_transient_errors_everywhere_are_retried(serve, keys, expected_all, tmp_path: Path, level: str) -> None:
    faults = Faults(kickoff_503=1, status_transient=2, status_429=1, file_transient=2, token_503=1,
                    token_lifetime=1, per_file=5, pending_polls=2)
    server = serve(faults)
    assert run_bulk(server, keys, tmp_path / "out", "--no-report", "--export-level", level) == EXIT_OK
    assert differences(_tables(tmp_path / "out"), expected_all) == []
    assert _problems(tmp_path / "out") == []
    assert server.counts == {"kickoff_503": 1, "status_transient": 2, "status_429": 1, "file_transient": 2,
                             "token_503": 1}
    # many small files, and a 1-second token renewed along the way (polls wait >= 1 s each)
    assert sum(1 for m, p, s in server.log if "/files/" in p and s == 200) > 20
    assert len(server.tokens) >= 3


def test_types_the_server_does_not_hold_are_dropped_and_said(serve, keys, resources, tmp_path: Path) -> None:
    server = serve(Faults(not_held={"QuestionnaireResponse", "AdverseEvent"}))
    out = tmp_path / "out"
    assert run_bulk(server, keys, out) == EXIT_PARTIAL
    expected = _files_door(_without(resources, {"QuestionnaireResponse", "AdverseEvent"}), tmp_path / "files")
    assert differences(_tables(out), expected) == []
    gaps = [p for p in _problems(out) if p["field"] == "(server)"]
    assert sorted(p["resource_type"] for p in gaps) == ["AdverseEvent", "QuestionnaireResponse"]
    assert all("not available on this server" in p["reason"] for p in gaps)
    assert sum(1 for _, p, s in server.log if "$export" in p and s == 400) == 2
    report = (out / "report.html").read_text()
    assert "Incomplete data" in report and "AdverseEvent" in report
    bundle = json.loads((out / "measure-reports.json").read_text())
    for entry in bundle["entry"]:
        gaps_ext = [e["valueString"] for e in entry["resource"]["extension"] if e["url"] == EXT_DATA_INCOMPLETE]
        assert len(gaps_ext) == 2
    assert run_bulk(server, keys, tmp_path / "again", "--allow-partial", "--no-report") == EXIT_OK


@pytest.mark.parametrize("mode", ["empty", "warn"])
def test_type_filter_that_cannot_be_right_falls_back(serve, keys, expected_all, tmp_path: Path, mode: str) -> None:
    server = serve(Faults(type_filter=mode))
    assert run_bulk(server, keys, tmp_path / "out", "--no-report") == EXIT_OK
    assert differences(_tables(tmp_path / "out"), expected_all) == []
    assert _problems(tmp_path / "out") == []  # the warning belonged to the discarded export
    kicks = [p for _, p, _ in server.log if "$export" in p]
    assert len(kicks) == 2 and "_typeFilter" in kicks[0] and "_typeFilter" not in kicks[1]
    assert server.count("/status/") >= 2 and any(m == "DELETE" for m, p, _ in server.log if "/status/" in p)


def test_no_type_filter_option(serve, keys, expected_all, tmp_path: Path) -> None:
    server = serve(Faults(type_filter="empty"))
    assert run_bulk(server, keys, tmp_path / "out", "--no-report", "--no-type-filter") == EXIT_OK
    assert differences(_tables(tmp_path / "out"), expected_all) == []
    kicks = [p for _, p, _ in server.log if "$export" in p]
    assert len(kicks) == 1 and "_typeFilter" not in kicks[0]


def test_failed_files_in_the_manifest_error(serve, keys, resources, tmp_path: Path) -> None:
    server = serve(Faults(failed_types={"Observation"}, error_warning="3 resources had invalid dates"))
    out = tmp_path / "out"
    assert run_bulk(server, keys, out, "--no-report", "--no-type-filter") == EXIT_PARTIAL
    assert differences(_tables(out), _files_door(_without(resources, {"Observation"}), tmp_path / "files")) == []
    rows = [p for p in _problems(out) if p["resource_type"] == "OperationOutcome"]
    assert sorted((r["severity"], r["reason"].split(": ", 1)[1]) for r in rows) == [
        ("skipped", "Failed to export Observation file 2; the resources it concerns were not exported"),
        ("warning", "3 resources had invalid dates"),
    ]
    assert all(r["file"] for r in rows)
    bundle = json.loads((out / "measure-reports.json").read_text())
    assert all(any(e["url"] == EXT_DATA_INCOMPLETE for e in entry["resource"]["extension"])
               for entry in bundle["entry"])
    assert run_bulk(server, keys, tmp_path / "again", "--no-report", "--no-type-filter", "--allow-partial") == EXIT_OK


def test_expired_files_restart_the_export(serve, keys, expected_all, tmp_path: Path) -> None:
    server = serve(Faults(expire_files=1, per_file=50))
    assert run_bulk(server, keys, tmp_path / "out", "--no-report") == EXIT_OK
    assert differences(_tables(tmp_path / "out"), expected_all) == []
    assert sum(1 for _, p, _ in server.log if "$export" in p) == 2


def test_files_that_keep_expiring_are_an_error(serve, keys, tmp_path: Path, capsys) -> None:
    server = serve(Faults(expire_files=1000))
    assert run_bulk(server, keys, tmp_path / "out", "--no-report") == EXIT_USAGE
    assert "expired (410) 3 times" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_deleted_resources_do_not_count(serve, keys, resources, tmp_path: Path) -> None:
    procedures = [r for r in resources if r["resourceType"] == "Procedure"]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    gone = {("Procedure", procedures[0]["id"]), ("Observation", observations[0]["id"]),
            ("Observation", observations[1]["id"])}
    server = serve(Faults(deleted=gone))
    out = tmp_path / "out"
    assert run_bulk(server, keys, out, "--no-report") == EXIT_OK
    assert differences(_tables(out), _files_door(_without(resources, keys=gone), tmp_path / "files")) == []
    rows = {(p["resource_type"], p["resource_id"]) for p in _problems(out) if p["field"] == "(bulk deleted)"}
    assert rows <= gone and ("Procedure", procedures[0]["id"]) in rows


def test_plain_search_against_a_bulk_only_server(serve, keys, tmp_path: Path, capsys) -> None:
    server = serve()
    assert run_bulk(server, keys, tmp_path / "out", bulk=False) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "this server offers no search for Procedure (CapabilityStatement); use --bulk" in err
    assert "<html" not in err
    assert server.count("/Procedure") == 0


def test_plan_is_logged_at_verbose(serve, keys, tmp_path: Path, capsys) -> None:
    server = serve(Faults(not_held={"AdverseEvent"}))
    run_bulk(server, keys, tmp_path / "out", "--no-report", "-v")
    err = capsys.readouterr().err
    assert "fetch plan: bulk $export at system level" in err
    assert "_typeFilter: yes (declared by the $export OperationDefinition" in err
    assert "$export levels in the CapabilityStatement: patient, system" in err


def test_host_api_and_validate_say_what_is_missing(serve, keys, resources, tmp_path: Path, capsys) -> None:
    """The other faces over the same server: the host API's MeasureReports and problems carry the gaps, and
    validate fails (exit 1) naming them."""
    from fhir_pts.host import FhirPtsHost
    from fhir_pts.sources.server.config import ServerConfig

    server = serve(Faults(not_held={"AdverseEvent"}))
    config = ServerConfig(url=server.base_url, auth="smart", client_id=CLIENT, private_key=keys["full-es"],
                          bulk=True)
    result = FhirPtsHost().run(server=config)
    assert len(result.analysed_cohort.data_gaps) == 1 and "AdverseEvent" in result.analysed_cohort.data_gaps[0]
    assert all(any(e["url"] == EXT_DATA_INCOMPLETE for e in r["extension"]) for r in result.measure_reports)
    assert [p.resource_type for p in result.problem_list if p.field == "(server)"] == ["AdverseEvent"]
    expected = _files_door(_without(resources, {"AdverseEvent"}), tmp_path / "files")
    got = result.results.astype(object).where(result.results.notna(), "")
    assert len(got) == len(expected["results"])
    for row, want in zip(got.to_dict("records"), expected["results"], strict=True):
        assert differences({"r": [{k: str(v) for k, v in row.items()}]}, {"r": [want]}) == []

    argv = ["validate", "--server", server.base_url, "--bulk", "--client-id", CLIENT, "--private-key",
            str(keys["full-es"]), "--format", "csv", "-q"]
    assert main(argv) == 1
    assert "AdverseEvent" in capsys.readouterr().out


def test_resumed_export_keeps_what_the_server_refused(serve, keys, tmp_path: Path) -> None:
    """A run cut off mid-download resumes from the state file without a new kick-off, and still knows which
    types the server refused (the gap is not forgotten on resume)."""
    from fhir_pts.sources.server.auth import SmartBackendAuth
    from fhir_pts.sources.server.bulk import STATE_NAME, BulkStats, fetch_by_bulk
    from fhir_pts.sources.server.http import RequestRefused, make_session

    server = serve(Faults(not_held={"QuestionnaireResponse"}, file_transient=1000, per_file=20))
    auth = SmartBackendAuth(server.token_url, CLIENT, keys["full-es"], "system/*.read")
    session = make_session(auth, retries=1, backoff_factor=0.01)
    with pytest.raises(RequestRefused, match="500"):
        fetch_by_bulk(session, server.base_url, tmp_path, poll_cap=0.2)
    assert (tmp_path / STATE_NAME).exists()
    kickoffs = server.count("$export")
    assert kickoffs == 2  # refused, then accepted without QuestionnaireResponse
    server.faults.file_transient = 0
    stats = BulkStats()
    paths = fetch_by_bulk(session, server.base_url, tmp_path, poll_cap=0.2, stats=stats)
    assert server.count("$export") == kickoffs and stats.kickoffs == 0  # resumed, not started over
    assert stats.refused_types == ["QuestionnaireResponse"] and stats.incomplete
    assert [p.resource_type for p in stats.problems if p.field == "(server)"] == ["QuestionnaireResponse"]
    assert "QuestionnaireResponse.ndjson" not in {p.name for p in paths}
    assert not (tmp_path / STATE_NAME).exists()
