"""A small misbehaving HTTP proxy on loopback, in front of sekmet-fhir, for faults we cannot provoke otherwise.

It forwards every request to the upstream server, rewriting the upstream origin to its own in bodies and in
``Location``/``Content-Location`` (so paging links and bulk URLs come back through it), and applies fault
rules: ``400``, ``405``, ``429`` (with Retry-After), ``503``, ``500``, ``drop`` (close without answering), ``slow``
(delay, then forward), ``truncate`` (announce the full length, send half the body, close) and ``ignore-param``
(forward without the query parameter ``param``, as a server that silently ignores it).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from tests.sources.server.loopback import LoopbackServer

HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host",
       "proxy-connection", "te", "trailer", "upgrade"}


@dataclass
class Fault:
    """Apply ``action`` to requests whose path contains ``match`` (and method ``method``), ``times`` times
    (None: always)."""

    match: str  # a substring of the path, or a regular expression when ``regex``
    action: str
    times: int | None = 1
    method: str | None = None
    retry_after: str = "1"
    delay: float = 1.0
    regex: bool = False
    param: str | None = None  # for ignore-param
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Does this fault apply to the request (ignoring how many times it was used)?"""
        found = re.search(self.match, path) if self.regex else self.match in path
        return bool(found) and (self.method is None or self.method == method)


class FaultProxy(LoopbackServer):
    """The proxy server; ``faults`` can be changed between requests; ``log`` records (method, path, fault)."""

    def __init__(self, upstream_root: str) -> None:
        self.upstream = upstream_root.rstrip("/")
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        super().__init__(self.handle)

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        fault = self._fault_for(h.command, h.path)
        with self._lock:
            self.log.append((h.command, h.path, fault.action if fault else None))
        if fault and fault.action == "drop":
            h.close_connection = True
            return
        if fault and fault.action in ("400", "405", "429", "503", "500"):
            payload = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient",' \
                      b'"diagnostics":"injected fault"}]}'
            h.send_response(int(fault.action))
            if fault.action in ("429", "503"):
                h.send_header("Retry-After", fault.retry_after)
            h.send_header("Content-Type", "application/fhir+json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        if fault and fault.action == "slow":
            time.sleep(fault.delay)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        path = h.path
        if fault and fault.action == "ignore-param":
            parts = urlsplit(path)
            kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != fault.param]
            path = urlunsplit(parts._replace(query=urlencode(kept)))
        upstream = requests.request(h.command, self.upstream + path, headers=headers, data=body,
                                    allow_redirects=False, timeout=60)
        content = upstream.content.replace(self.upstream.encode(), self.root.encode())
        h.send_response(upstream.status_code)
        for k, v in upstream.headers.items():
            if k.lower() not in HOP:
                h.send_header(k, v.replace(self.upstream, self.root))
        h.send_header("Content-Length", str(len(content)))
        h.end_headers()
        if fault and fault.action == "truncate":
            h.wfile.write(content[: len(content) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(content)

    def count(self, match: str, method: str = "GET") -> int:
        """How many requests whose path contains ``match`` reached the proxy."""
        with self._lock:
            return sum(1 for m, p, _ in self.log if m == method and match in p)
