"""An HTTP server with a bounded pool of worker threads (the stdlib's ``ThreadingHTTPServer`` starts one thread
per connection: 300 idle connections held 303 threads). Accepted connections wait in a queue for a free worker;
beyond ``16 * workers`` waiting ones a new connection is answered ``503`` (an OperationOutcome, ``throttled``,
``Retry-After: 5``) and closed. Used by :mod:`fhir_pts.serve`; the handler's ``timeout`` closes idle ones."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

__all__ = ["PooledHTTPServer"]

_BUSY_BODY = json.dumps(
    {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "throttled", "diagnostics": "busy"}]}
).encode()
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/fhir+json; charset=utf-8\r\nRetry-After: 5\r\n"
    + f"Connection: close\r\nContent-Length: {len(_BUSY_BODY)}\r\n\r\n".encode()
    + _BUSY_BODY
)


class PooledHTTPServer(HTTPServer):
    """``HTTPServer`` whose connections are handled by ``workers`` threads started with it."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, workers: int = 16) -> None:
        self._jobs: queue.Queue[tuple[Any, Any] | None] = queue.Queue()
        super().__init__(address, handler)
        self._workers = [
            threading.Thread(target=self._work, name=f"fhir-pts-serve-{i}", daemon=True) for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Queue the connection for a worker thread (instead of a new thread per connection)."""
        if self._jobs.qsize() >= 16 * len(self._workers):
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        self._jobs.put((request, client_address))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            request, client_address = job
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._jobs.put(None)
