"""``fhir-pts serve`` under disclosure control and under load: small cells suppressed, periods that isolate
fewer patients than the minimum cell size refused, bounded threads, idle sockets closed, every error an
OperationOutcome (raw sockets on 127.0.0.1, where ``requests`` would not send the malformed requests)."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
import requests

from fhir_pts.conformance import check_measure_report
from fhir_pts.disclosure import DATA_ABSENT_REASON
from fhir_pts.serve import ServeConfig, build_server

TIMEOUT = 60
WHOLE = {"periodStart": "1900", "periodEnd": "2100"}


@pytest.fixture(scope="module")
def server(cohort_file: Path) -> Iterator[object]:
    srv = build_server(ServeConfig(files=(cohort_file,), port=0, workers=4, idle_timeout=1.0))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def base(server: object) -> str:
    return server.base_url  # type: ignore[attr-defined]


def evaluate(base: str, measure_id: str, **params: str) -> requests.Response:
    return requests.get(f"{base}/Measure/{measure_id}/$evaluate-measure", params=params, timeout=TIMEOUT)


def index_dates(server: object) -> list:
    frame = server.cohort.patients  # type: ignore[attr-defined]
    return sorted(pd.to_datetime(frame["index_date"]).dt.date)


# ----------------------------------------------------------------------------------------- disclosure


def test_one_patient_period_is_refused(server: object, base: str) -> None:
    day = index_dates(server)[20].isoformat()
    response = evaluate(base, "cohort", periodStart=day, periodEnd=day)
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "business-rule" and "fewer than 10 patients" in issue["diagnostics"]
    assert "age" not in response.text and 'patients"' not in response.text


def test_two_periods_differing_by_a_few_patients_cannot_both_be_answered(server: object, base: str) -> None:
    """A differencing attack: the answers for [a, z] and [a', z] (one patient apart) would give that patient."""
    dates = index_dates(server)
    end = dates[-1].isoformat()
    answered = [evaluate(base, "cohort", periodStart=dates[i].isoformat(), periodEnd=end) for i in range(len(dates))]
    ok = [i for i, r in enumerate(answered) if r.status_code == 200]
    assert ok, "some period must be answerable"
    sizes = sorted({len(dates) - i for i in ok})
    for small, large in itertools.pairwise(sizes):
        assert large - small >= 10, sizes
    assert all(r.status_code in (200, 422) for r in answered)


def test_small_counts_are_masked_and_the_report_still_conforms(base: str) -> None:
    report = evaluate(base, "technical-success", **WHOLE).json()
    populations = {p["code"]["coding"][0]["code"]: p for p in report["group"][0]["population"]}
    excluded = populations["denominator-exclusion"]  # 2 patients with an unknown outcome in this cohort
    assert "count" not in excluded
    assert excluded["_count"] == {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}
    assert populations["initial-population"]["count"] == 45
    assert report["group"][0]["measureScore"] == {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}
    assert "suppressed" in report["text"]["div"]
    assert check_measure_report(report) == []


def test_equal_selections_are_computed_once(server: object, base: str) -> None:
    first = evaluate(base, "civiq20", **WHOLE)
    before = server.evaluations_run  # type: ignore[attr-defined]
    again = evaluate(base, "civiq20", periodStart="1901", periodEnd="2099")  # the same patients
    assert server.evaluations_run == before  # type: ignore[attr-defined]
    assert again.json()["period"] == {"start": "1901-01-01", "end": "2099-12-31"}
    assert again.json()["group"] == first.json()["group"]
    assert again.json()["id"] != first.json()["id"]


def test_min_cell_count_one_is_validated() -> None:
    from fhir_pts.serve import ServeConfigError

    with pytest.raises(ServeConfigError, match="minimum cell count"):
        ServeConfig(files=(Path("x"),), min_cell_count=-1).check()


# ----------------------------------------------------------------------------------------- raw sockets


def exchange(base: str, raw: bytes) -> tuple[int, dict, bytes]:
    """Send ``raw`` on a fresh connection; return the status, the headers and the body of the answer."""
    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=TIMEOUT) as connection:
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            head, sep, body = answer.partition(b"\r\n\r\n")
            if sep:
                headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line)
                if len(body) >= int(headers.get("Content-Length", 10**9)):
                    break
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"OPTIONS /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n", 405, "not-supported"),
        (b"TRACE /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n", 405, "not-supported"),
        (b"BREW /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not-supported"),
        (b"GET /fhir/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "too-long"),
        (b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431, "too-long"),
        (b"GET /fhir/metadata HTTP/1.1\r\n" + b"X-A: 1\r\n" * 150 + b"\r\n", 431, "too-long"),
        (
            b"POST /fhir/Measure/cohort/$evaluate-measure HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",
            400,
            "structure",
        ),
    ],
)
def test_every_protocol_error_is_an_operation_outcome(base: str, request_bytes: bytes, status: int, code: str) -> None:
    got, headers, body = exchange(base, request_bytes)
    assert got == status
    assert headers["content-type"].startswith("application/fhir+json")
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == code


def test_deeply_nested_json_is_400(base: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    path = urlsplit(base).path
    got, _, answer = exchange(
        base,
        f"POST {path}/Measure/cohort/$evaluate-measure HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body,
    )
    assert got == 400
    assert json.loads(answer)["issue"][0]["code"] == "structure"


def test_idle_connection_is_closed(base: str) -> None:
    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=TIMEOUT) as connection:
        assert connection.recv(1024) == b""  # closed by the server (idle_timeout 1 s), not by our timeout


def test_idle_connections_do_not_make_threads(base: str) -> None:
    where = urlsplit(base)
    before = threading.active_count()
    connections = [socket.create_connection((where.hostname, where.port), timeout=TIMEOUT) for _ in range(60)]
    try:
        time.sleep(0.3)
        assert threading.active_count() <= before + 1  # the 4 workers exist already; none is added
    finally:
        for connection in connections:
            connection.close()
    time.sleep(1.5)  # the workers drop the idle connections
    assert requests.get(f"{base}/metadata", timeout=TIMEOUT).status_code == 200
