"""The loopback HTTP server the misbehaving test servers share (fault proxy, scripted server, Bulk server)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """A threaded HTTP server on a free 127.0.0.1 port, serving from a daemon thread while used as a context
    manager. Every request, whatever its method, goes to ``handle(handler)``."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None], protocol_version: str = "HTTP/1.0") -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                handle(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

        Handler.protocol_version = protocol_version
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The FHIR base: ``{root}/fhir``."""
        return f"{self.root}/fhir"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
