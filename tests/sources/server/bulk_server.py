"""A small misbehaving Bulk Data server on loopback: what real Bulk servers do, on demand.

It holds a list of FHIR resources and speaks just enough FHIR for ``fhir-pts run --server URL --bulk``:
``/metadata`` (a bulk-only CapabilityStatement, as the SMART reference server's: resources with ``read`` only,
``$export`` at system and Patient level, an OperationDefinition that takes ``_typeFilter``), SMART Backend
Services (``/.well-known/smart-configuration``; ``/auth/token`` checks the ES384/RS384 client assertion against
the registered public key and grants tokens of ``token_lifetime`` seconds, which every other request must carry
unexpired), kick-off, status, files, DELETE. Plain search answers 404 with an HTML page.

:class:`Faults` reproduces, each on demand, what the reference server (smart-on-fhir/bulk-data-server) and
others do: a 400 for a ``_type`` it does not hold, an empty manifest under ``_typeFilter`` (or a warning in the
manifest's ``error`` instead of applying it), transient 500s / 503s / 429s with Retry-After (kick-off, status,
files, token), failed files listed in ``error`` as OperationOutcome NDJSON, files that answer 410 Gone,
``deleted`` entries, and many small files.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.sources.server.loopback import LoopbackServer

OO = "OperationOutcome"
EXPORT_DEFINITION = "OperationDefinition/export"


def outcome(code: str, text: str, severity: str = "error") -> dict:
    return {"resourceType": OO, "issue": [{"severity": severity, "code": code, "diagnostics": text}]}


@dataclass
class Faults:
    """What to get wrong (all off by default)."""

    not_held: set[str] = field(default_factory=set)  # kick-off 400: "type … not available on this server"
    type_filter: str | None = None  # "empty": empty manifest under _typeFilter; "warn": ignore it with a warning
    kickoff_503: int = 0  # the first N kick-offs answer 503 + Retry-After
    status_transient: int = 0  # the first N status polls answer 500 OperationOutcome "transient"
    status_429: int = 0  # the next N polls answer 429 + Retry-After
    file_transient: int = 0  # the first N file downloads answer 500 "transient"
    token_503: int = 0  # the first N token requests answer 503
    failed_types: set[str] = field(default_factory=set)  # these files fail: listed in the manifest's error
    error_warning: str | None = None  # a warning OperationOutcome in the manifest's error (no file lost)
    expire_files: int = 0  # the first N file downloads answer 410 Gone
    deleted: set[tuple[str, str]] = field(default_factory=set)  # listed in deleted (still in output too)
    per_file: int = 10_000  # resources per output file
    pending_polls: int = 1  # 202 answers before the manifest
    token_lifetime: int = 300
    retry_after: str = "1"


class BulkServer(LoopbackServer):
    """The server (a context manager): ``resources`` to export, ``faults`` to apply, ``log`` of requests."""

    def __init__(self, resources: Iterable[dict], public_key: Path, client_id: str = "bulk-client",
                 faults: Faults | None = None) -> None:
        self.resources = list(resources)
        self.faults = faults or Faults()
        self.client_id = client_id
        pem = public_key.read_bytes()
        self.key: ECKey | RSAKey = ECKey.import_key(pem) if b"BEGIN PUBLIC KEY" in pem and _is_ec(pem) \
            else RSAKey.import_key(pem)
        self.tokens: dict[str, float] = {}
        self.jtis: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str, int]] = []
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__(self.handle, "HTTP/1.1")
        self.token_url = f"{self.root}/auth/token"

    # -- helpers ------------------------------------------------------------------------------------
    def _take(self, name: str) -> bool:
        """Use up one of the fault counter ``name`` (True when it was still positive)."""
        with self._lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                self.counts[name] = self.counts.get(name, 0) + 1
                return True
            return False

    def count(self, what: str) -> int:
        """How many requests whose path contains ``what`` were answered."""
        with self._lock:
            return sum(1 for _, path, _ in self.log if what in path)

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any = None, headers: dict[str, str] | None = None,
              content_type: str = "application/fhir+json") -> None:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if data:
            h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        with self._lock:
            self.log.append((h.command, h.path, status))

    def _authorised(self, h: BaseHTTPRequestHandler) -> bool:
        value = h.headers.get("Authorization", "")
        token = value[7:] if value.startswith("Bearer ") else None
        with self._lock:
            expiry = self.tokens.get(token or "")
        if expiry is None or expiry < time.monotonic():
            self._send(h, 401, outcome("login", "no valid access token (expired or missing)"))
            return False
        return True

    # -- routes -------------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = parse_qs(url.query)
        path = url.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if path == "/fhir/metadata":
            return self._send(h, 200, self.capability_statement())
        if path == "/fhir/.well-known/smart-configuration":
            return self._send(h, 200, {"token_endpoint": self.token_url,
                                       "capabilities": ["client-confidential-asymmetric"],
                                       "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
                                       "scopes_supported": ["system/*.read"]}, content_type="application/json")
        if path == "/fhir/" + EXPORT_DEFINITION:
            return self._send(h, 200, {"resourceType": "OperationDefinition", "id": "export", "code": "export",
                                       "parameter": [{"name": n, "use": "in", "min": 0, "max": "*", "type": "string"}
                                                     for n in ("_outputFormat", "_since", "_type", "_typeFilter")]})
        if path == "/auth/token" and h.command == "POST":
            return self.token(h, parse_qs(body.decode()))
        if not self._authorised(h):
            return None
        if path in ("/fhir/$export", "/fhir/Patient/$export"):
            return self.kickoff(h, query, path)
        if path.startswith("/fhir/status/"):
            return self.status(h, path.rsplit("/", 1)[1])
        if path.startswith("/fhir/files/"):
            return self.file(h, path)
        page = b"<html><body><h1>404 Not Found</h1><p>Cannot GET " + path.encode() + b"</p></body></html>"
        return self._send(h, 404, page, content_type="text/html")

    def capability_statement(self) -> dict:
        types = sorted({r["resourceType"] for r in self.resources} - self.faults.not_held)
        export = {"name": "export", "definition": f"{self.base_url}/{EXPORT_DEFINITION}"}
        resources = [{"type": t, "interaction": [{"code": "read"}],
                      "searchParam": [{"name": "code", "type": "token"}] if t == "Observation" else [],
                      **({"operation": [export]} if t == "Patient" else {})} for t in types]
        return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
                "software": {"name": "fhir-pts loopback bulk server"}, "format": ["json"],
                "rest": [{"mode": "server", "resource": resources, "operation": [export]}]}

    def token(self, h: BaseHTTPRequestHandler, form: dict[str, list[str]]) -> None:
        if self._take("token_503"):
            return self._send(h, 503, outcome("transient", "token service busy"), {"Retry-After": "0"})
        assertion = (form.get("client_assertion") or [""])[0]
        try:
            token = jwt.decode(assertion, self.key, algorithms=["ES384", "RS384"])
            claims = token.claims
        except Exception as e:
            return self._send(h, 401, {"error": "invalid_client", "error_description": type(e).__name__},
                              content_type="application/json")
        if claims.get("iss") != self.client_id or claims.get("aud") != self.token_url \
                or claims.get("jti") in self.jtis or int(claims.get("exp", 0)) < time.time():
            return self._send(h, 401, {"error": "invalid_client", "error_description": "bad assertion claims"},
                              content_type="application/json")
        self.jtis.add(claims["jti"])
        value = secrets.token_urlsafe(16)
        with self._lock:
            self.tokens[value] = time.monotonic() + self.faults.token_lifetime
        self._send(h, 200, {"access_token": value, "token_type": "bearer", "expires_in": self.faults.token_lifetime,
                            "scope": (form.get("scope") or [""])[0]}, content_type="application/json")

    def kickoff(self, h: BaseHTTPRequestHandler, query: dict[str, list[str]], path: str) -> None:
        if self._take("kickoff_503"):
            return self._send(h, 503, outcome("transient", "busy"), {"Retry-After": self.faults.retry_after})
        held = {r["resourceType"] for r in self.resources} - self.faults.not_held
        types = [t for v in query.get("_type", []) for t in v.split(",") if t] or sorted(held)
        for t in types:
            if t not in held:
                return self._send(h, 400, outcome("processing",
                                                  f'The requested resource type "{t}" is not available on this server'))
        filters = query.get("_typeFilter", [])
        job = secrets.token_hex(6)
        with self._lock:
            self.jobs[job] = {"types": types, "filters": filters, "polls": 0, "level": path}
        self._send(h, 202, outcome("informational", "accepted", "information"),
                   {"Content-Location": f"{self.base_url}/status/{job}"})

    def _selected(self, job: dict[str, Any]) -> dict[str, list[dict]]:
        wanted = set(job["types"])
        by_type: dict[str, list[dict]] = {}
        for r in self.resources:
            if r["resourceType"] in wanted:
                by_type.setdefault(r["resourceType"], []).append(r)
        for f in job["filters"]:
            rtype, _, q = f.partition("?")
            codes = {c.replace("\\,", ",").replace("\\|", "|") for v in parse_qs(q).get("code", []) for c in _split(v)}
            if rtype in by_type and codes:
                by_type[rtype] = [r for r in by_type[rtype] if any(
                    f"{c.get('system')}|{c.get('code')}" in codes for c in (r.get("code") or {}).get("coding", []))]
        return by_type

    def status(self, h: BaseHTTPRequestHandler, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return self._send(h, 404, outcome("not-found", "no such job"))
        if h.command == "DELETE":
            self.jobs.pop(job_id, None)
            return self._send(h, 202)
        if self._take("status_transient"):
            return self._send(h, 500, outcome("transient", "An unknown error occurred (transient_error). "
                                                           "Please try again."))
        if self._take("status_429"):
            return self._send(h, 429, outcome("throttled", "slow down"), {"Retry-After": self.faults.retry_after})
        job["polls"] += 1
        if job["polls"] <= self.faults.pending_polls:
            return self._send(h, 202, None, {"X-Progress": "50%", "Retry-After": self.faults.retry_after})
        manifest: dict[str, Any] = {"transactionTime": "2026-01-01T00:00:00Z", "request": f"{self.base_url}$export",
                                    "requiresAccessToken": True, "output": [], "error": [], "deleted": []}
        files: dict[str, bytes] = {}
        if job["filters"] and self.faults.type_filter == "empty":
            pass  # what the reference server answered under _typeFilter: nothing at all
        else:
            by_type = self._selected(job) if self.faults.type_filter != "warn" else self._selected(
                {**job, "filters": []})
            n = 0
            for rtype in sorted(by_type):
                items = by_type[rtype]
                if rtype in self.faults.failed_types:
                    n += 1
                    name = f"{n}.{OO}.ndjson"
                    failed = outcome("exception", f"Failed to export {rtype} file {n}")
                    files[name] = (json.dumps(failed) + "\n").encode()
                    manifest["error"].append({"type": OO, "url": f"{self.base_url}/files/{job_id}/{name}"})
                    continue
                for start in range(0, len(items), self.faults.per_file):
                    n += 1
                    chunk = items[start:start + self.faults.per_file]
                    name = f"{n}.{rtype}.ndjson"
                    files[name] = "".join(json.dumps(r) + "\n" for r in chunk).encode()
                    manifest["output"].append({"type": rtype, "url": f"{self.base_url}/files/{job_id}/{name}",
                                               "count": len(chunk)})
            warning = self.faults.error_warning or ("_typeFilter is not supported by this server; ignored"
                                                    if job["filters"] and self.faults.type_filter == "warn" else None)
            if warning:
                n += 1
                name = f"{n}.{OO}.ndjson"
                files[name] = (json.dumps(outcome("informational", warning, "warning")) + "\n").encode()
                manifest["error"].append({"type": OO, "url": f"{self.base_url}/files/{job_id}/{name}"})
            if self.faults.deleted:
                n += 1
                name = f"{n}.Bundle.deleted.ndjson"
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"request": {"method": "DELETE", "url": f"{t}/{i}"}} for t, i in sorted(self.faults.deleted)]}
                files[name] = (json.dumps(bundle) + "\n").encode()
                manifest["deleted"].append({"type": "Bundle", "url": f"{self.base_url}/files/{job_id}/{name}"})
        job["files"] = files
        self._send(h, 200, manifest, content_type="application/json")

    def file(self, h: BaseHTTPRequestHandler, path: str) -> None:
        _, _, _, job_id, name = path.split("/", 4)
        job = self.jobs.get(job_id)
        if self._take("expire_files") or job is None or name not in job.get("files", {}):
            return self._send(h, 410, outcome("expired", "Access to the target resource is no longer available"))
        if self._take("file_transient"):
            return self._send(h, 500, outcome("transient", "try again"))
        self._send(h, 200, job["files"][name], content_type="application/fhir+ndjson")


def _split(value: str) -> list[str]:
    """Split a token list on commas not escaped with a backslash."""
    out, current, escaped = [], "", False
    for ch in value:
        if escaped:
            current += "\\" + ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return [c for c in out if c]


def _is_ec(pem: bytes) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return isinstance(load_pem_public_key(pem), ec.EllipticCurvePublicKey)
