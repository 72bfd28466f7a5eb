"""``fhir-pts serve`` over real HTTP on 127.0.0.1: every measure's ``$evaluate-measure`` agrees with
``fhir-pts run``, and bad requests get an OperationOutcome with the right status."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.operationoutcome import OperationOutcome

from fhir_pts.codes import MEASURE_BASE
from fhir_pts.outputs.measure_report import EXT_STATISTIC
from fhir_pts.serve import (
    TOKEN_ENV,
    ServeConfig,
    ServeConfigError,
    add_serve_arguments,
    build_server,
    cmd_serve,
    config_from_args,
)
from tests.contract import CONTRACT_MEASURES

MEASURE_IDS = (*CONTRACT_MEASURES, "villalta-class-shift")  # + the out-of-tree plugin (plugins/fhir-pts-class-shift)
WHOLE = {"periodStart": "1900", "periodEnd": "2100"}
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FHIR_PTS_PLUGINS", raising=False)
    monkeypatch.delenv("FHIR_PTS_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv(TOKEN_ENV, raising=False)


@pytest.fixture(scope="module")
def cli_out(cohort_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fhir_pts.cli import main

    out = tmp_path_factory.mktemp("cli")
    # suppression off, as the server below: measure-reports.json is the shared file, masked by default
    assert main(["run", str(cohort_file), "--out", str(out), "--no-report", "--quiet", "--min-cell-count", "1"]) == 0
    return out


@contextmanager
def running(config: ServeConfig) -> Iterator[str]:
    """Serve ``config`` in a thread; yield the FHIR base URL; shut down afterwards."""
    server = build_server(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def base(cohort_file: Path) -> Iterator[str]:
    """A server with suppression off (``min_cell_count=1``), to compare every number with ``fhir-pts run``;
    disclosure control is tested on its own in ``tests/test_serve_disclosure.py``."""
    with running(ServeConfig(files=(cohort_file,), port=0, min_cell_count=1)) as url:
        yield url


def evaluate(base: str, measure_id: str, **params: str) -> requests.Response:
    return requests.get(f"{base}/Measure/{measure_id}/$evaluate-measure", params=params, timeout=TIMEOUT)


def statistics_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {value, ciLow, ciHigh, pValue, sampleSize} from the statistic extensions of the report."""
    out: dict[str, dict[str, Any]] = {}
    for ext in report["group"][0].get("extension", []):
        if ext["url"] != EXT_STATISTIC:
            continue
        parts = {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]}
        out[parts.pop("name")] = parts
    return out


def outcome_of(response: requests.Response) -> OperationOutcome:
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    return OperationOutcome.model_validate(response.json())


# ------------------------------------------------------------------------------------ metadata, Measure


def test_metadata_is_a_capability_statement(base: str) -> None:
    response = requests.get(f"{base}/metadata", timeout=TIMEOUT)
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    (measure,) = statement.rest[0].resource
    assert measure.type == "Measure"
    assert {i.code for i in measure.interaction} == {"read", "search-type"}
    assert [(o.name, o.definition) for o in measure.operation] == [
        ("evaluate-measure", "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure")
    ]


def test_measure_search_lists_every_installed_analysis(base: str) -> None:
    bundle = requests.get(f"{base}/Measure", timeout=TIMEOUT).json()
    assert bundle["type"] == "searchset" and bundle["total"] == len(MEASURE_IDS)
    assert [e["resource"]["id"] for e in bundle["entry"]] == list(MEASURE_IDS)
    for entry in bundle["entry"]:
        Measure.model_validate(entry["resource"])
        assert entry["fullUrl"] == f"{base}/Measure/{entry['resource']['id']}"
    by_id = requests.get(f"{base}/Measure", params={"_id": "villalta,civiq20"}, timeout=TIMEOUT).json()
    assert [e["resource"]["id"] for e in by_id["entry"]] == ["villalta", "civiq20"]
    by_url = requests.get(f"{base}/Measure", params={"url": f"{MEASURE_BASE}/cohort|0.1.0"}, timeout=TIMEOUT).json()
    assert by_url["total"] == 1


def test_measure_read_packaged_and_plugin_measures(base: str) -> None:
    from fhir_pts.conformance import measure

    packaged = requests.get(f"{base}/Measure/villalta", timeout=TIMEOUT)
    assert packaged.status_code == 200 and packaged.json() == measure("villalta")
    plugin = requests.get(f"{base}/Measure/villalta-class-shift", timeout=TIMEOUT).json()
    model = Measure.model_validate(plugin)
    assert model.url == f"{MEASURE_BASE}/villalta-class-shift" and model.scoring.coding[0].code == "proportion"
    assert model.improvementNotation.coding[0].code == "increase"
    missing = requests.get(f"{base}/Measure/nope", timeout=TIMEOUT)
    assert missing.status_code == 404 and outcome_of(missing).issue[0].code == "not-found"


# ------------------------------------------------------------------------------------ $evaluate-measure


@pytest.mark.parametrize("measure_id", MEASURE_IDS)
def test_evaluate_measure_agrees_with_the_cli(base: str, cli_out: Path, measure_id: str) -> None:
    response = evaluate(base, measure_id, **WHOLE)
    assert response.status_code == 200, response.text
    report = response.json()
    model = MeasureReport.model_validate(report)
    assert model.status == "complete" and model.type == "summary"
    assert model.measure.startswith(f"{MEASURE_BASE}/{measure_id}|")
    assert report["period"] == {"start": "1900-01-01", "end": "2100-12-31"}

    cli = pd.read_csv(cli_out / "results.csv")
    rows = cli[cli["measure"] == measure_id]
    served = statistics_of(report)
    assert list(served) == rows["statistic"].tolist()
    for row in rows.itertuples():
        got = served[row.statistic]
        for column, key in (("value", "value"), ("ci_low", "ciLow"), ("ci_high", "ciHigh"), ("p_value", "pValue")):
            expected = getattr(row, column)
            if pd.isna(expected):
                assert key not in got, (row.statistic, key)
            else:
                assert got[key] == pytest.approx(expected, rel=1e-12, abs=1e-15), (row.statistic, key)
        assert got.get("sampleSize") == (None if pd.isna(row.n) else int(row.n)), row.statistic

    cli_reports = json.loads((cli_out / "measure-reports.json").read_text())["entry"]
    (cli_report,) = [e["resource"] for e in cli_reports if e["resource"]["measure"] == report["measure"]]
    assert report["group"][0].get("population") == cli_report["group"][0].get("population")


def test_post_with_parameters_gives_the_get_answer(base: str) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "periodStart", "valueDate": "1900-01-01"},
            {"name": "periodEnd", "valueDate": "2100-12-31"},
            {"name": "reportType", "valueCode": "summary"},
            {"name": "subject", "valueString": "Group/pts-cohort"},
        ],
    }
    posted = requests.post(
        f"{base}/Measure/technical-success/$evaluate-measure",
        data=json.dumps(body),
        headers={"Content-Type": "application/fhir+json"},
        timeout=TIMEOUT,
    )
    assert posted.status_code == 200, posted.text
    got = evaluate(base, "technical-success", subject="Group/pts-cohort", **WHOLE).json()
    drop = ("id", "date")
    assert {k: v for k, v in posted.json().items() if k not in drop} == {k: v for k, v in got.items() if k not in drop}
    assert got["subject"] == {"reference": "Group/pts-cohort"}


def test_type_level_with_a_measure_canonical(base: str) -> None:
    response = requests.get(
        f"{base}/Measure/$evaluate-measure",
        params={"measure": f"{MEASURE_BASE}/cohort|0.1.0", **WHOLE},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.json()["measure"].startswith(f"{MEASURE_BASE}/cohort|")


def test_period_selects_patients_by_index_date(base: str, cli_out: Path) -> None:
    index = sorted(pd.to_datetime(pd.read_csv(cli_out / "cohort.csv")["index_date"]).dt.date)
    start, end = index[5], index[30]
    inside = sum(start <= d <= end for d in index)
    assert 0 < inside < len(index)
    report = evaluate(base, "cohort", periodStart=start.isoformat(), periodEnd=end.isoformat()).json()
    assert report["period"] == {"start": start.isoformat(), "end": end.isoformat()}
    assert statistics_of(report)["patients"]["value"] == inside
    month = evaluate(base, "cohort", periodStart=f"{start:%Y-%m}", periodEnd=f"{start:%Y-%m}").json()
    first = start.replace(day=1)
    assert month["period"]["start"] == first.isoformat()
    in_month = sum(d.year == start.year and d.month == start.month for d in index)
    assert statistics_of(month)["patients"]["value"] == in_month >= 1


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"periodStart": "2020-02-30", "periodEnd": "2021"}, 400, "invalid"),
        ({"periodStart": "yesterday", "periodEnd": "2021"}, 400, "invalid"),
        ({"periodStart": "2019-01-01Tjunk", "periodEnd": "2021"}, 400, "invalid"),  # FHIR's grammar exactly (#18)
        ({"periodStart": "2019-W01-1", "periodEnd": "2021"}, 400, "invalid"),
        ({"periodStart": "2022-01-01", "periodEnd": "2021-12-31"}, 400, "invalid"),
        ({"periodStart": "2020"}, 400, "required"),
        ({**WHOLE, "reportType": "subject-list"}, 400, "not-supported"),
        ({**WHOLE, "reportType": "individual"}, 400, "not-supported"),
        ({**WHOLE, "subject": "Patient/p1"}, 400, "not-supported"),
        ({**WHOLE, "practitioner": "Practitioner/1"}, 400, "not-supported"),
    ],
)
def test_bad_parameters_are_400(base: str, params: dict[str, str], status: int, code: str) -> None:
    response = evaluate(base, "cohort", **params)
    assert response.status_code == status
    assert outcome_of(response).issue[0].code == code


def test_unknown_measure_is_404(base: str) -> None:
    response = evaluate(base, "no-such-measure", **WHOLE)
    assert response.status_code == 404
    issue = outcome_of(response).issue[0]
    assert issue.code == "not-found" and "villalta" in issue.diagnostics
    # the one unknown-analysis message of every door (fhir_pts.pipeline.UnknownAnalysisError)
    assert issue.diagnostics.startswith("unknown analysis id(s) 'no-such-measure'; installed: ")


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"resourceType": "Patient"}', b'{"resourceType": "Parameters", "parameter": [{}]}']
)
def test_bad_post_bodies_are_400(base: str, body: bytes) -> None:
    response = requests.post(f"{base}/Measure/cohort/$evaluate-measure", data=body, timeout=TIMEOUT)
    assert response.status_code == 400
    outcome_of(response)


def test_other_methods_and_paths(base: str) -> None:
    assert requests.put(f"{base}/Measure/cohort", json={}, timeout=TIMEOUT).status_code == 405
    assert requests.post(f"{base}/Measure/cohort", json={}, timeout=TIMEOUT).status_code == 405
    assert requests.get(f"{base}/Patient/1", timeout=TIMEOUT).status_code == 404
    assert requests.get(base.replace("/fhir", "/other"), timeout=TIMEOUT).status_code == 404


def test_a_failing_analysis_is_500_and_the_others_still_answer(
    monkeypatch: pytest.MonkeyPatch, cohort_file: Path
) -> None:
    import fhir_pts_class_shift.plugin as class_shift_plugin

    def boom(cohort: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(class_shift_plugin, "class_shift", boom)
    with running(ServeConfig(files=(cohort_file,), port=0)) as base:  # its own server: answers are cached
        failed = evaluate(base, "villalta-class-shift", **WHOLE)
        assert failed.status_code == 500
        assert "class-shift: RuntimeError: boom" in outcome_of(failed).issue[0].diagnostics
        assert evaluate(base, "villalta", **WHOLE).status_code == 200
        assert evaluate(base, "villalta-class-shift", **WHOLE).status_code == 500  # a failure is not cached


# ------------------------------------------------------------------------------------------- security


def test_token_is_required_when_configured(cohort_file: Path) -> None:
    with running(ServeConfig(files=(cohort_file,), port=0, token="s3cret")) as url:
        assert requests.get(f"{url}/metadata", timeout=TIMEOUT).status_code == 200  # public
        missing = evaluate(url, "cohort", **WHOLE)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert outcome_of(missing).issue[0].code == "login"
        wrong = requests.get(f"{url}/Measure", headers={"Authorization": "Bearer nope"}, timeout=TIMEOUT)
        assert wrong.status_code == 401
        basic = requests.get(f"{url}/Measure", headers={"Authorization": "Basic s3cret"}, timeout=TIMEOUT)
        assert basic.status_code == 401
        right = requests.get(
            f"{url}/Measure/cohort/$evaluate-measure",
            params=WHOLE,
            headers={"Authorization": "Bearer s3cret"},
            timeout=TIMEOUT,
        )
        assert right.status_code == 200 and right.json()["resourceType"] == "MeasureReport"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_binding_beyond_loopback_needs_a_token(cohort_file: Path, host: str) -> None:
    with pytest.raises(ServeConfigError, match="token"):
        build_server(ServeConfig(files=(cohort_file,), host=host, port=0))  # refused before binding
    ServeConfig(files=(cohort_file,), host=host, token="t").check()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_token(cohort_file: Path, host: str) -> None:
    ServeConfig(files=(cohort_file,), host=host).check()


def test_config_needs_exactly_one_data_source() -> None:
    with pytest.raises(ServeConfigError, match="one of the two"):
        ServeConfig().check()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_token_from_file_or_environment(cohort_file: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    config = config_from_args(parse([str(cohort_file), "--host", "10.1.2.3", "--token-file", str(token_file)]), {})
    assert (config.host, config.token, config.port) == ("10.1.2.3", "from-file", 8080)
    assert config_from_args(parse([str(cohort_file), "--host", "10.1.2.3"]), {TOKEN_ENV: "env"}).token == "env"
    with pytest.raises(ServeConfigError, match="token"):
        config_from_args(parse([str(cohort_file), "--host", "10.1.2.3"]), {})
    token_file.write_text("  \n")
    with pytest.raises(ServeConfigError, match="empty"):
        config_from_args(parse([str(cohort_file), "--token-file", str(token_file)]), {})


def test_cmd_serve_refuses_an_unusable_configuration(
    cohort_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cmd_serve(parse([str(cohort_file), "--host", "0.0.0.0"])) == 2
    assert "needs an access token" in capsys.readouterr().err
    assert cmd_serve(parse([str(tmp_path / "missing.json"), "--port", "0"])) == 2


def test_command_line_server_source_keeps_its_own_token(tmp_path: Path) -> None:
    token_file = tmp_path / "serve-token"
    token_file.write_text("for-clients")
    args = parse(["--server", "http://127.0.0.1:9/fhir", "--token-file", str(token_file)])
    config = config_from_args(args, {})
    assert config.server is not None and config.server.base_url == "http://127.0.0.1:9/fhir"
    assert config.token == "for-clients" and config.server.token is None  # never sent to the hospital server
    assert config.files == ()


def test_serve_is_a_sub_command_of_the_cli(cohort_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fhir_pts.cli import main

    assert main(["serve", str(cohort_file), "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "needs an access token" in capsys.readouterr().err


def test_concurrent_requests_get_the_same_answers(base: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def ask(measure_id: str) -> tuple[str, dict[str, Any]]:
        report = evaluate(base, measure_id, **WHOLE).json()
        return measure_id, {k: v for k, v in report.items() if k not in ("id", "date")}

    alone = dict(ask(m) for m in ("villalta", "primary-patency", "civiq20-gain-regression"))
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(ask, ["villalta", "primary-patency", "civiq20-gain-regression"] * 4))
    for measure_id, report in together:
        got, expected = statistics_of(report), statistics_of(alone[measure_id])
        assert {n: sorted(parts) for n, parts in got.items()} == {n: sorted(parts) for n, parts in expected.items()}
        for name, parts in expected.items():
            for key, value in parts.items():
                same = got[name][key] == value if isinstance(value, str) else got[name][key] == pytest.approx(value)
                assert same, (measure_id, name, key)
        assert report["group"][0].get("population") == alone[measure_id]["group"][0].get("population")


def test_head_answers_without_a_body(base: str) -> None:
    response = requests.head(f"{base}/metadata", timeout=TIMEOUT)
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["Content-Length"]) > 0


def test_python_m_fhir_pts_serve_serves_until_interrupted(cohort_file: Path) -> None:
    """The real command in its own process: it says where it listens, answers, and stops cleanly on Ctrl-C."""
    import re
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "fhir_pts.serve", str(cohort_file), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        seen = []
        for _ in range(50):  # "fhir-pts serve: N patients, M measures at http://127.0.0.1:PORT/fhir" (warnings first?)
            seen.append(process.stderr.readline())
            match = re.search(r"at (http://127\.0\.0\.1:\d+/fhir)", seen[-1])
            if match or not seen[-1]:
                break
        assert match, seen
        url = match.group(1)
        assert requests.get(f"{url}/metadata", timeout=TIMEOUT).json()["resourceType"] == "CapabilityStatement"
        assert evaluate(url, "cohort", **WHOLE).status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)


@pytest.mark.parametrize("measure_id", MEASURE_IDS[:-1])
def test_served_reports_conform_to_the_project_profile(base: str, measure_id: str) -> None:
    """Restricted to a period and with a subject, the contract measures' reports still pass the project's
    MeasureReport checker (pts-measure-report profile, DEQM summary invariants). A plugin's measure is not in
    the packaged FHIR package, so the checker's ``pts-measure`` rule does not apply to it."""
    from fhir_pts.conformance import check_measure_report

    report = evaluate(base, measure_id, periodStart="2010", periodEnd="2020-06", subject="Group/pts").json()
    assert check_measure_report(report) == []


def test_ipv6_loopback(cohort_file: Path) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with running(ServeConfig(files=(cohort_file,), host="::1", port=0)) as url:
        assert url.startswith("http://[::1]:")
        assert requests.get(f"{url}/metadata", timeout=TIMEOUT).status_code == 200


def test_a_canonical_of_another_base_is_not_ours(base: str) -> None:
    response = requests.get(
        f"{base}/Measure/$evaluate-measure",
        params={"measure": "http://example.org/fhir/Measure/cohort", **WHOLE},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404


def test_an_oversized_body_is_413_without_reading_it(base: str) -> None:
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=TIMEOUT) as connection:
        connection.sendall(
            f"POST {where.path}/Measure/cohort/$evaluate-measure HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/fhir+json\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n{{".encode()
        )
        answer = b""
        while chunk := connection.recv(65536):  # the server answers and closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["issue"][0]["code"] == "too-costly"


def test_a_concept_map_canonical_is_kept_as_written() -> None:
    """``--concept-map https://…`` is not a path (a Path would collapse '//' and lose the canonical)."""
    import argparse

    from fhir_pts.serve import add_serve_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    canonical = "https://fhir.hospital.example/ConceptMap/site|2"
    args = parser.parse_args(["cohort.json", "--concept-map", canonical, "--concept-map", "local.json"])
    assert config_from_args(args, {}).concept_maps == (canonical, "local.json")
