"""A scripted misbehaving FHIR server on loopback (no upstream): each test gives a function that answers
every request, for faults a real server never makes on purpose (endless paging, a body cut mid-way, a page of
truncated JSON, a 503 from the token endpoint, broken subjects, lone surrogates)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
class Misbehaving:
    """``script(request, server)`` answers each request; ``requests`` records them."""

    script: Callable[[Request, Misbehaving], Answer]
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query), self.rfile.read(length))
                server.requests.append(request)
                status, headers, body = server.script(request, server)
                self.send_response(200 if status == "cut" else int(status))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                if status == "cut":
                    self.send_header("Connection", "close")
                self.end_headers()
                if status == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"{self.root}/fhir"

    def __enter__(self) -> Misbehaving:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path_part: str) -> int:
        return sum(1 for r in self.requests if path_part in r.path)
