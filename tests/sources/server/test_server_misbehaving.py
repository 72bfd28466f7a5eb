"""Faults of a misbehaving server on loopback (issue #18 items 2, 3, 4): endless paging stopped with a clear
error, mid-body faults and truncated pages retried, the token endpoint's 503 retried after Retry-After,
broken subjects and lone surrogates reported by the file pipeline instead of lost or crashing, no patient id
in error messages."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path

import pytest

from fhir_pts.engines.local import collect_facts
from fhir_pts.sources.server.http import RequestRefused, ServerError, check, make_session
from fhir_pts.sources.server.search import Searcher, fetch_by_search
from tests.sources.server.misbehaving import Answer, Misbehaving, Request, bundle, fhir

STENT = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "37238"}]}


def stenting(rid: str, subject: str) -> dict:
    return {"resourceType": "Procedure", "id": rid, "status": "completed", "code": STENT,
            "subject": {"reference": subject}, "performedDateTime": "2020-01-15"}  # fmt: skip


def patient(pid: str, **extra: object) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01", **extra}


def session():
    return make_session(backoff_factor=0.01, backoff_max=0.05, retry_after_max=0.2)


def empty_for_other_types(request: Request) -> Answer | None:
    if request.path.endswith("/Procedure") and "code" in request.query:
        return None
    return fhir(bundle([]))


# ------------------------------------------------------------------------------------------ paging (item 2)


def test_fresh_cursors_over_the_same_page_are_stopped(tmp_path: Path) -> None:
    """Every page carries a new cursor and the same content: stopped at the second page, no temporary file left."""

    def script(request: Request, server: Misbehaving) -> Answer:
        if len(server.requests) > 200:  # a safety net for the unfixed code: end the search eventually
            return fhir(bundle([]))
        return fhir(bundle([stenting("p1", "Patient/a")], f"{server.base_url}/Procedure?cursor={uuid.uuid4()}"))

    with Misbehaving(script) as server:
        with pytest.raises(ServerError, match="repeats earlier pages"):
            fetch_by_search(session(), server.base_url, tmp_path)
        assert len(server.requests) == 2
    assert list(tmp_path.glob(".*.tmp")) == []


def test_pages_beyond_the_total_are_stopped() -> None:
    """New content on every page, forever; the first page said total 4 with 2 per page."""
    ids = itertools.count()

    def script(request: Request, server: Misbehaving) -> Answer:
        if len(server.requests) > 200:
            return fhir(bundle([]))
        page = [stenting(f"p{next(ids)}", "Patient/a") for _ in range(2)]
        return fhir(bundle(page, f"{server.base_url}/Procedure?cursor={uuid.uuid4()}", total=4))

    with Misbehaving(script) as server:
        searcher = Searcher(session(), server.base_url, page_size=2)
        with pytest.raises(ServerError, match="more than its total allows"):
            list(searcher.pages("Procedure", {}))
        assert len(server.requests) == 4  # 2 pages, plus PAGE_SLACK


def test_configured_page_limit_without_total() -> None:
    ids = itertools.count()

    def script(request: Request, server: Misbehaving) -> Answer:
        if len(server.requests) > 200:
            return fhir(bundle([]))
        return fhir(bundle([stenting(f"p{next(ids)}", "Patient/a")], f"{server.base_url}/Procedure?c={next(ids)}"))

    with Misbehaving(script) as server:
        with pytest.raises(ServerError, match="limit of 5 pages"):
            list(Searcher(session(), server.base_url, page_size=1, max_pages=5).pages("Procedure", {}))
        assert len(server.requests) == 5


# ------------------------------------------------------------------------------------ mid-body faults (item 3)


@pytest.mark.parametrize("fault", ["cut", "truncated-json"])
def test_a_page_cut_off_is_fetched_again(tmp_path: Path, fault: str) -> None:
    faults = {"left": 2}

    def script(request: Request, server: Misbehaving) -> Answer:
        other = empty_for_other_types(request)
        if other is not None:
            return other
        body = bundle([stenting("proc1", "Patient/a")], include=[patient("a")])
        if faults["left"]:
            faults["left"] -= 1
            if fault == "cut":
                return "cut", {"Content-Type": "application/fhir+json"}, body
            return fhir(body[: len(body) // 2])
        return fhir(body)

    with Misbehaving(script) as server:
        paths = fetch_by_search(session(), server.base_url, tmp_path)
        assert server.count("/Procedure") == 3 + 1  # 2 faults, the index page, the patients' Procedure search
    written = {p.name: p.read_text().count("\n") for p in paths}
    assert written["Procedure.ndjson"] == 1 and written["Patient.ndjson"] == 1


def test_a_page_that_never_arrives_whole_is_a_clear_error(tmp_path: Path) -> None:
    def script(request: Request, server: Misbehaving) -> Answer:
        return "cut", {"Content-Type": "application/fhir+json"}, bundle([stenting("proc1", "Patient/a")])

    expected = r"the answer was cut off \(ChunkedEncodingError\) 6 times"
    with Misbehaving(script) as server, pytest.raises(ServerError, match=expected):
        fetch_by_search(session(), server.base_url, tmp_path)


def test_token_endpoint_503_is_retried_after_retry_after(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from fhir_pts.sources.server.auth import SmartBackendAuth
    from fhir_pts.sources.server.http import RetryPolicy

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    pem.chmod(0o600)

    def script(request: Request, server: Misbehaving) -> Answer:
        if len(server.requests) <= 2:
            return (
                503,
                {"Retry-After": "0", "Content-Type": "application/json"},
                b'{"error": "temporarily_unavailable"}',
            )
        return 200, {"Content-Type": "application/json"}, b'{"access_token": "tok", "expires_in": 300}'

    with Misbehaving(script) as server:
        auth = SmartBackendAuth(f"{server.root}/token", "client", pem, retry=RetryPolicy(backoff_factor=0.01))
        assert auth.token() == "tok"
        assertions = [r.body for r in server.requests]
    assert len(assertions) == 3 and len(set(assertions)) == 3  # a fresh assertion (jti) each time


# ------------------------------------------------------------------------ dropped records (item 4)


def test_broken_subjects_reach_problems_csv_and_surrogates_do_not_crash(tmp_path: Path) -> None:
    def script(request: Request, server: Misbehaving) -> Answer:
        if request.path.endswith("/Procedure") and "code" in request.query:
            procedures = [stenting("p1", "urn:uuid:a"), stenting("p2", "Patient/"), stenting("p3", "Patient/b")]
            surrogate = b'{"resourceType": "Patient", "id": "b", "gender": "male", "name": [{"text": "\\ud800"}]}'
            body = bundle(procedures, include=[patient("a")])
            body = body[:-2] + b', {"resource": ' + surrogate + b', "search": {"mode": "include"}}]}'
            return fhir(body)
        if request.path.endswith("/Procedure"):
            return fhir(bundle([stenting("p2", "Patient/")]))  # the server matched it to one of our patients
        return fhir(bundle([]))

    with Misbehaving(script) as server:
        paths = fetch_by_search(session(), server.base_url, tmp_path)
    facts = collect_facts(paths)
    assert sorted((p.resource_id, p.patient_id) for p in facts.procedures) == [("p1", "a"), ("p3", "b")]
    subject = [p for p in facts.problems if p.resource_id == "p2"]
    assert [p.field for p in subject] == ["subject"]
    (surrogate,) = [p for p in facts.problems if p.resource_id != "p2"]  # the line is reported, as in a file
    assert surrogate.field == "json" and "surrogate" in surrogate.reason and surrogate.file.endswith("Patient.ndjson")


def test_error_messages_name_no_patient() -> None:
    def script(request: Request, server: Misbehaving) -> Answer:
        return fhir(b'{"resourceType": "OperationOutcome", "issue": []}', status=500)

    with Misbehaving(script) as server:
        response = session().get(f"{server.base_url}/Observation", params={"patient": "MRN-4711,MRN-4712"})
        with pytest.raises(RequestRefused) as raised:
            check(response, server.base_url)
    assert "MRN-4711" not in str(raised.value) and "patient=" in str(raised.value)
    assert json.dumps(str(raised.value))  # printable


def test_bulk_narrowing_keeps_a_lone_surrogate_for_the_file_pipeline(tmp_path: Path) -> None:
    from fhir_pts.sources.server.bulk import select_into

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "Procedure.ndjson").write_text(json.dumps(stenting("p1", "Patient/a")) + "\n")
    (downloads / "Patient.ndjson").write_bytes(
        b'{"resourceType": "Patient", "id": "a", "name": [{"text": "\\ud800"}]}\n'
    )
    raw = tmp_path / "raw"
    paths = select_into(sorted(downloads.iterdir()), raw, {"Patient", "Procedure"})
    facts = collect_facts(paths)
    assert [p.resource_id for p in facts.procedures] == ["p1"]
    (problem,) = facts.problems
    assert problem.field == "json" and problem.file.endswith("Patient.ndjson")
