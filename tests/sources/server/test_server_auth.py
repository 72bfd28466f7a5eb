"""Discovery and authentication against the real sekmet-fhir (and a tiny non-R4 server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fhir_pts.sources.server.auth import BearerTokenAuth, SmartBackendAuth, choose_scopes, load_signing_key
from fhir_pts.sources.server.discovery import FhirVersionError, discover
from fhir_pts.sources.server.http import (
    AuthenticationError,
    AuthorizationError,
    FhirSession,
    ServerError,
    check,
    make_session,
)
from tests.sources.server.sekmet_harness import ServerInfo, smart_session

pytestmark = pytest.mark.server


def test_discovery_reads_r4_and_token_endpoint(sekmet: ServerInfo) -> None:
    caps = discover(make_session(), sekmet.base_url)
    assert caps.fhir_version.startswith("4.0.")
    assert caps.token_url == sekmet.token_url
    assert "system/*.rs" in caps.scopes_supported
    assert "patient" in caps.search_params["QuestionnaireResponse"]  # the launcher's additions
    assert "export" in caps.operations


class _R5Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def r5_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _R5Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_non_r4_server_is_refused_clearly(r5_server: str) -> None:
    with pytest.raises(FhirVersionError, match=r"FHIR 5\.0\.0; expected 4\.0\.x \(R4\)"):
        discover(make_session(), r5_server)


@pytest.mark.parametrize("client", ["full_rs384", "full_es384", "reader"])
def test_smart_backend_services_good_path(sekmet: ServerInfo, cohort: list[dict], client: str) -> None:
    scope = choose_scopes(["system/*.read", "system/*.rs"], ["permission-v2"])
    assert scope == "system/*.rs"
    session = smart_session(sekmet, client, scope)
    r = check(session.get(f"{sekmet.base_url}/Patient", params={"_count": 1}))
    assert r.json()["resourceType"] == "Bundle"
    auth = session.auth
    assert isinstance(auth, SmartBackendAuth)
    assert auth.alg == getattr(sekmet, client).alg
    # token is cached: a second request does not fetch a new one
    check(session.get(f"{sekmet.base_url}/Patient", params={"_count": 1}))
    assert auth.tokens_fetched == 1
    assert "eyJ" not in repr(auth)


def test_token_renewed_once_on_401(sekmet: ServerInfo, cohort: list[dict]) -> None:
    session = smart_session(sekmet, "full_es384", "system/*.read")
    auth = session.auth
    assert isinstance(auth, SmartBackendAuth)
    auth.token()
    auth._token.value = "not-a-valid-token"  # type: ignore[union-attr]  # as if the server revoked it
    r = check(session.get(f"{sekmet.base_url}/Patient", params={"_count": 1}))
    assert r.status_code == 200
    assert auth.tokens_fetched == 2


def test_wrong_key_is_refused(sekmet: ServerInfo) -> None:
    auth = SmartBackendAuth(sekmet.token_url, "pts-full-rs", sekmet.stranger_key, "system/*.read")
    with pytest.raises(AuthenticationError, match=r"refused client 'pts-full-rs'.*invalid_client.*verification"):
        auth.token()


def test_unknown_client_is_refused(sekmet: ServerInfo) -> None:
    auth = SmartBackendAuth(sekmet.token_url, "nobody", sekmet.stranger_key, "system/*.read")
    with pytest.raises(AuthenticationError, match=r"Unknown client_id 'nobody'"):
        auth.token()


def test_scope_not_granted_is_refused(sekmet: ServerInfo) -> None:
    auth = SmartBackendAuth(sekmet.token_url, "pts-reader", sekmet.reader.private_key, "system/*.write")
    with pytest.raises(AuthenticationError, match=r"invalid_scope"):
        auth.token()


def test_missing_write_scope_is_a_clear_403(sekmet: ServerInfo, reader: FhirSession) -> None:
    r = reader.post(f"{sekmet.base_url}/Patient", json={"resourceType": "Patient"},
                    headers={"Content-Type": "application/fhir+json"})
    with pytest.raises(AuthorizationError, match=r"forbids Patient \(403\) at POST .*/fhir/Patient") as e:
        check(r, sekmet.base_url)
    assert "Bearer" not in str(e.value) and "eyJ" not in str(e.value)


def test_bad_static_token_is_a_clear_401(sekmet: ServerInfo) -> None:
    session = make_session(BearerTokenAuth("wrong-token-value"))
    with pytest.raises(AuthenticationError, match=r"refused the credentials \(401\) for Observation") as e:
        check(session.get(f"{sekmet.base_url}/Observation"), sekmet.base_url)
    assert "wrong-token-value" not in str(e.value)


def test_key_loading_refuses_public_keys_and_garbage(sekmet: ServerInfo, tmp_path) -> None:
    pub = sekmet.reader.private_key.with_name("reader.pub.pem")
    with pytest.raises(ServerError, match="public key"):
        load_signing_key(pub)
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(ServerError, match="not a PEM private key or a JWKS"):
        load_signing_key(junk)


def test_jwks_key_file(sekmet: ServerInfo, tmp_path) -> None:
    from joserfc.jwk import KeySet

    key, alg = load_signing_key(sekmet.full_es384.private_key)
    jwks = tmp_path / "client.jwks"
    jwks.write_text(json.dumps(KeySet([key]).as_dict(private=True)))
    auth = SmartBackendAuth(sekmet.token_url, "pts-full-es", jwks, "system/*.read")
    assert auth.alg == alg == "ES384"
    assert auth.token()


def test_tls_verification_is_on_by_default() -> None:
    assert make_session().verify is True
