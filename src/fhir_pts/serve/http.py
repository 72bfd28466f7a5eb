"""The HTTP part of ``fhir-pts serve``: one request handler (routing, access token, body limits, the FHIR JSON
answers and OperationOutcomes), over the pooled threading server of :mod:`fhir_pts.serve_pool`."""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from fhir_pts import __version__
from fhir_pts.codes import MEASURE_BASE
from fhir_pts.serve_parameters import Problem, operation_outcome, parse_evaluate_parameters
from fhir_pts.serve_parameters import parameters_resource as _parameters_resource

_Problem = Problem

if TYPE_CHECKING:
    from fhir_pts.serve.fhir import FhirPtsServer

log = logging.getLogger("fhir_pts.serve")

FHIR_JSON = "application/fhir+json; charset=utf-8"
#: Largest request body accepted (a Parameters resource is a few hundred bytes).
MAX_BODY = 1 << 20
#: Largest ``$pool`` request body (the sites' Bundles, with their KM tables and distributions).
POOL_MAX_BODY = 64 << 20


class _Handler(BaseHTTPRequestHandler):
    server: FhirPtsServer
    server_version = f"fhir-pts/{__version__}"
    protocol_version = "HTTP/1.1"

    # --- plumbing ---------------------------------------------------------------------------------------

    def setup(self) -> None:
        self.timeout = float(self.server.config.idle_timeout)  # an idle or too slow client is disconnected
        super().setup()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The errors the stdlib answers itself (400 bad request line, 414, 431, 501 unknown method, 505) as
        OperationOutcomes, like every other error."""
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.INTERNAL_SERVER_ERROR
        issue = {
            HTTPStatus.REQUEST_URI_TOO_LONG: "too-long",
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "too-long",
            HTTPStatus.NOT_IMPLEMENTED: "not-supported",
            HTTPStatus.METHOD_NOT_ALLOWED: "not-supported",
            HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: "not-supported",
            HTTPStatus.REQUEST_TIMEOUT: "timeout",
        }.get(status, "structure" if status == HTTPStatus.BAD_REQUEST else "processing")
        self.close_connection = True
        body = json.dumps(operation_outcome(issue, f"{status.value} {message or status.phrase}")).encode("utf-8")
        self.send_response(status, message)
        self.send_header("Content-Type", FHIR_JSON)
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, resource: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(resource, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", FHIR_JSON)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _fail(self, problem: _Problem) -> None:
        headers = {"WWW-Authenticate": 'Bearer realm="fhir-pts"'} if problem.status == HTTPStatus.UNAUTHORIZED else {}
        self._send(problem.status, operation_outcome(problem.code, problem.message), headers)

    def _authorised(self) -> None:
        token = self.server.config.token
        if not token:
            return
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise _Problem(HTTPStatus.UNAUTHORIZED, "login", "an access token is required (Authorization: Bearer)")
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise _Problem(HTTPStatus.UNAUTHORIZED, "login", "the access token is not valid")

    def _route(self) -> tuple[list[str], list[tuple[str, str]]]:
        parts = urlsplit(self.path)
        base = self.server.config.base_path
        path = parts.path.rstrip("/")
        if path != base and not path.startswith(base + "/"):
            raise _Problem(HTTPStatus.NOT_FOUND, "not-found", f"no FHIR endpoint at {parts.path} (base is {base})")
        segments = [s for s in path[len(base) :].split("/") if s]
        return segments, parse_qsl(parts.query, keep_blank_values=True)

    def _body_parameters(self) -> list[tuple[str, str]]:
        length = self._content_length()
        if length > MAX_BODY:
            raise _Problem(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too-costly", "the request body is too large")
        raw = self.rfile.read(length) if length else b""
        self._body_consumed = True
        if not raw:
            return []
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _Problem(HTTPStatus.BAD_REQUEST, "structure", f"the body is not JSON ({exc})") from exc
        except RecursionError:
            raise _Problem(HTTPStatus.BAD_REQUEST, "structure", "the body is JSON nested too deeply") from None
        if not isinstance(body, Mapping):
            raise _Problem(HTTPStatus.BAD_REQUEST, "structure", "the body must be a FHIR Parameters resource")
        return _parameters_resource(body)

    def _measure_id(self, key: str) -> str:
        """A measure id from an id or a canonical (``url`` or ``url|version``); 404 if not served."""
        url = key.split("|", 1)[0]
        measure_id = url.rsplit("/", 1)[-1] if "/" in url else url
        if measure_id not in self.server.analyses or ("/" in url and url != f"{MEASURE_BASE}/{measure_id}"):
            from fhir_pts.pipeline import UnknownAnalysisError

            unknown = UnknownAnalysisError([key], list(self.server.analyses))  # the message of every face
            raise _Problem(HTTPStatus.NOT_FOUND, "not-found", str(unknown))
        return measure_id

    # --- methods ----------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch(post=False)

    def do_HEAD(self) -> None:
        self._dispatch(post=False)

    def do_POST(self) -> None:
        self._dispatch(post=True)

    def _refuse(self) -> None:
        self._body_consumed = False
        self._drain()
        self._fail(_Problem(HTTPStatus.METHOD_NOT_ALLOWED, "not-supported", f"{self.command} is not supported"))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            self.close_connection = True
            raise _Problem(HTTPStatus.BAD_REQUEST, "structure", "Content-Length is not a number") from exc
        if length < 0:
            self.close_connection = True
            raise _Problem(HTTPStatus.BAD_REQUEST, "structure", "Content-Length is negative")
        return length

    def _drain(self) -> None:
        """Read an unread request body, so that the connection can be reused; close it when that is unsafe."""
        if getattr(self, "_body_consumed", False):
            return
        self._body_consumed = True
        try:
            length = self._content_length()
        except _Problem:
            return
        if length > MAX_BODY:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _dispatch(self, post: bool) -> None:
        self._body_consumed = False  # one handler serves every request of a kept-alive connection
        try:
            segments, query = self._route()
            if segments == ["metadata"] and not post:
                self._send(HTTPStatus.OK, self.server.capability_statement())
                return
            self._authorised()
            if segments and segments[0] == "Measure":
                self._measure(segments[1:], query, post)
                return
            if segments == ["MeasureReport", "$pool"]:
                self._pool(post)
                return
            raise _Problem(HTTPStatus.NOT_FOUND, "not-found", f"no FHIR endpoint at {urlsplit(self.path).path}")
        except _Problem as problem:
            self._drain()
            self._fail(problem)
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            pass
        except Exception as exc:  # an internal failure: say so, keep serving
            log.exception("internal failure on %s %s", self.command, urlsplit(self.path).path)
            self._fail(_Problem(HTTPStatus.INTERNAL_SERVER_ERROR, "exception", f"{type(exc).__name__}: {exc}"))
        finally:
            self._drain()

    def _pool(self, post: bool) -> None:
        """``POST [base]/MeasureReport/$pool``: a Parameters resource with one ``site`` parameter per site, its
        ``resource`` the site's shared ``measure-reports.json`` Bundle; answers the pooled Bundle (as
        ``fhir-pts pool``), 422 naming the difference when the sites cannot be pooled (docs/pooling.md)."""
        if not post:
            raise _Problem(HTTPStatus.METHOD_NOT_ALLOWED, "not-supported", "$pool takes a POST with the sites' Bundles")
        length = self._content_length()
        if length > POOL_MAX_BODY:
            raise _Problem(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too-costly", "the request body is too large")
        raw = self.rfile.read(length) if length else b""
        self._body_consumed = True
        try:
            body = json.loads(raw or b"null")
        except (ValueError, RecursionError) as exc:
            raise _Problem(HTTPStatus.BAD_REQUEST, "structure", f"the body is not usable JSON ({exc})") from None
        if not isinstance(body, Mapping) or body.get("resourceType") != "Parameters":
            raise _Problem(HTTPStatus.BAD_REQUEST, "structure", "the body must be a FHIR Parameters resource")
        sites = [p.get("resource") for p in body.get("parameter", []) or [] if p.get("name") == "site"]
        labels = [f"site{i + 1}" for i in range(len(sites))]
        if not sites or not all(isinstance(b, Mapping) for b in sites):
            raise _Problem(HTTPStatus.BAD_REQUEST, "required", "give one 'site' parameter per site, with its Bundle")
        from fhir_pts.host import HostError
        from fhir_pts.pipeline import pooled_bundle

        try:
            result = self.server.fhir_host.pool(sites, labels=labels)
        except HostError as exc:
            raise _Problem(HTTPStatus.UNPROCESSABLE_ENTITY, "processing", str(exc)) from exc
        self._send(HTTPStatus.OK, pooled_bundle(result))

    def _measure(self, rest: list[str], query: list[tuple[str, str]], post: bool) -> None:
        if rest and rest[-1] == "$evaluate-measure" and len(rest) <= 2:
            pairs = query + (self._body_parameters() if post else [])
            request = parse_evaluate_parameters(pairs)
            if len(rest) == 2:
                measure_id = self._measure_id(rest[0])
                if request.measure is not None and self._measure_id(request.measure) != measure_id:
                    raise _Problem(HTTPStatus.BAD_REQUEST, "invalid", "the measure parameter names another Measure")
            elif request.measure is None:
                raise _Problem(HTTPStatus.BAD_REQUEST, "required", "type-level $evaluate-measure needs a measure")
            else:
                measure_id = self._measure_id(request.measure)
            from fhir_pts.host import HostError

            try:
                report = self.server.evaluate(measure_id, request)
            except HostError as exc:
                raise _Problem(HTTPStatus.BAD_REQUEST, "invalid", str(exc)) from exc
            self._send(HTTPStatus.OK, report)
            return
        if post:
            raise _Problem(HTTPStatus.METHOD_NOT_ALLOWED, "not-supported", "POST is only for $evaluate-measure")
        if len(rest) == 1:
            self._send(HTTPStatus.OK, self.server.measures[self._measure_id(rest[0])])
            return
        if not rest:
            self._send(HTTPStatus.OK, self._search(query))
            return
        raise _Problem(HTTPStatus.NOT_FOUND, "not-found", f"no FHIR endpoint at {urlsplit(self.path).path}")

    def _search(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        measures = list(self.server.measures.values())
        for name, value in query:
            if name == "_id":
                wanted = set(value.split(","))
                measures = [m for m in measures if m["id"] in wanted]
            elif name == "url":
                urls = {v.split("|", 1)[0] for v in value.split(",")}
                measures = [m for m in measures if m["url"] in urls]
        base = self.server.base_url
        self_url = f"{base}/Measure" + (f"?{urlsplit(self.path).query}" if query else "")
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "searchset",
            "total": len(measures),
            "link": [{"relation": "self", "url": self_url}],
            "entry": [
                {"fullUrl": f"{base}/Measure/{m['id']}", "resource": m, "search": {"mode": "match"}} for m in measures
            ],
        }
