"""A scripted misbehaving FHIR server on loopback (no upstream): each test gives a function that answers
every request, for faults a real server never makes on purpose (endless paging, a body cut mid-way, a page of
truncated JSON, a 503 from the token endpoint, broken subjects, lone surrogates)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.sources.server.loopback import LoopbackServer

#: What a script returns: (status, headers, body) or ("cut", headers, body) to announce the whole body, send
#: half of it and close the connection.
Answer = tuple[int | str, dict[str, str], bytes]


def bundle(resources: list[dict], next_url: str | None = None, total: int | None = None,
           include: list[dict] = ()) -> bytes:  # fmt: skip
    """A searchset Bundle (resources as matches, ``include`` as includes) as JSON bytes."""
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        out["total"] = total
    if next_url:
        out["link"] = [{"relation": "next", "url": next_url}]
    out["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in resources] + [
        {"resource": r, "search": {"mode": "include"}} for r in include
    ]
    return json.dumps(out).encode()


def fhir(body: bytes, status: int = 200, **headers: str) -> Answer:
    return status, {"Content-Type": "application/fhir+json", **headers}, body


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes


@dataclass
class Misbehaving(LoopbackServer):
    """``script(request, server)`` answers each request; ``requests`` records them."""

    script: Callable[[Request, Misbehaving], Answer]
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self._answer, "HTTP/1.1")

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        parts = urlsplit(h.path)
        request = Request(h.command, parts.path, parse_qs(parts.query), h.rfile.read(length))
        self.requests.append(request)
        status, headers, body = self.script(request, self)
        h.send_response(200 if status == "cut" else int(status))
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        if status == "cut":
            h.send_header("Connection", "close")
        h.end_headers()
        if status == "cut":
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)

    def count(self, path_part: str) -> int:
        return sum(1 for r in self.requests if path_part in r.path)
