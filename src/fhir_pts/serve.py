"""``fhir-pts serve``: the analyses as a small FHIR R4 server (Measure read/search and ``$evaluate-measure``).

An EHR or a measure-reporting tool reaches fhir-pts the FHIR way, with no new framework (stdlib
:class:`~http.server.ThreadingHTTPServer`) and through the host API (:mod:`fhir_pts.host`)::

    GET  /fhir/metadata                              CapabilityStatement (public, no token needed)
    GET  /fhir/Measure[?_id=..&url=..]               searchset Bundle of the installed analyses' Measures
    GET  /fhir/Measure/[id]                          one Measure
    GET  /fhir/Measure/[id]/$evaluate-measure?periodStart=2019-01-01&periodEnd=2021-12-31
    POST /fhir/Measure/[id]/$evaluate-measure        body: a Parameters resource with the same parameters
    GET|POST /fhir/Measure/$evaluate-measure?measure=[id or canonical]&...   (type level, same semantics)

The data is configured when the server starts (FHIR files, or a hospital server through the server source)
and read once. ``$evaluate-measure`` follows R4: ``periodStart`` and ``periodEnd`` (``date``, both required;
partial dates ``YYYY`` / ``YYYY-MM`` stand for their first / last day), ``reportType`` ``summary`` only,
``subject`` a ``Group/...`` reference (accepted and echoed in ``MeasureReport.subject``; the cohort is always
the configured data). **The period selects the patients whose index procedure date lies in it** (both ends
inclusive) and becomes ``MeasureReport.period``; see ``docs/serve.md``.

Binds ``127.0.0.1`` by default. Binding any other address needs an access token (``--token-file FILE`` or
the environment variable ``FHIR_PTS_SERVE_TOKEN``); when a token is set, every request except ``metadata``
must carry ``Authorization: Bearer <token>``. Errors are ``OperationOutcome`` s: unknown measure 404, bad
parameters 400, missing or wrong token 401, a period that would isolate fewer patients than the minimum cell
size 422, failed analysis 500 (every other HTTP error too, 405/408/413/414/431, is an OperationOutcome).

Disclosure control (:mod:`fhir_pts.disclosure`): counts of 1..``min_cell_count``-1 patients are suppressed and
marked ``masked`` (:mod:`fhir_pts.outputs.suppression`), and a period is answered only when it includes or
excludes whole blocks of at least ``min_cell_count`` patients (by index date), so that no two answers can be
subtracted to isolate fewer. Exhaustion: a bounded pool of worker threads serves the connections, an idle
connection is closed after ``idle_timeout`` seconds, at most ``max_evaluations`` analyses run at once, and the
report of one measure over one selection of patients is computed once (cached).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from fhir_pts import __version__
from fhir_pts.analyses.result import AnalysisInfo
from fhir_pts.codes import MEASURE_BASE, MEASURE_SCORING
from fhir_pts.disclosure import MIN_CELL_COUNT, add_min_cell_count_argument, check_min_cell_count, selection_blocks
from fhir_pts.serve_parameters import EvaluateRequest, Problem, operation_outcome, parse_evaluate_parameters
from fhir_pts.serve_parameters import parameters_resource as _parameters_resource
from fhir_pts.serve_pool import PooledHTTPServer

_Problem = Problem

if TYPE_CHECKING:
    from fhir_pts.cohort.model import Cohort
    from fhir_pts.host import FhirPtsHost, HostResult
    from fhir_pts.sources.server.config import ServerConfig

__all__ = [
    "TOKEN_ENV",
    "ServeConfig",
    "ServeConfigError",
    "add_serve_arguments",
    "build_server",
    "cmd_serve",
    "serve_main",
]

log = logging.getLogger("fhir_pts.serve")

#: Environment variable holding the access token (alternative to ``--token-file``).
TOKEN_ENV = "FHIR_PTS_SERVE_TOKEN"
FHIR_JSON = "application/fhir+json; charset=utf-8"
EVALUATE_MEASURE = "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure"
IMPROVEMENT_NOTATION = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
#: Largest request body accepted (a Parameters resource is a few hundred bytes).
MAX_BODY = 1 << 20
#: Largest ``$pool`` request body (the sites' Bundles, with their KM tables and distributions).
POOL_MAX_BODY = 64 << 20


class ServeConfigError(ValueError):
    """The serve configuration is unusable (e.g. a non-loopback address without an access token)."""


@dataclass(frozen=True)
class ServeConfig:
    """What ``fhir-pts serve`` serves and how.

    Attributes
    ----------
    files: FHIR Bundle / NDJSON files or folders holding the cohort's data (or give ``server``).
    server: a hospital FHIR server to fetch the data from once, at start (the server source).
    host: address to bind; ``127.0.0.1`` by default. Anything but a loopback address needs ``token``.
    port: port to bind (0: any free port; the bound one is ``server.server_address[1]``).
    token: the access token clients send as ``Authorization: Bearer <token>`` (None: no check, loopback only).
    base_path: the FHIR base path (``/fhir``).
    concept_maps: ConceptMaps for site-local codes (as ``fhir-pts run --concept-map``): files, or canonicals read from
        ``server``.
    allow / block: plugin (entry-point) names to load / not to load, as :class:`~fhir_pts.host.FhirPtsHost`.
    min_cell_count: the minimum cell size (:mod:`fhir_pts.disclosure`; default 10, 1 turns suppression off).
    workers: threads serving connections (more connections wait for a free one).
    idle_timeout: seconds a connection may stay silent (reading a request or between requests) before it is
        closed.
    max_evaluations: analyses running at once (the rest wait; the CPU is the limit, not the threads).
    """

    files: tuple[Path, ...] = ()
    server: ServerConfig | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = field(default=None, repr=False)
    base_path: str = "/fhir"
    concept_maps: tuple[Path | str, ...] = ()
    allow: tuple[str, ...] | None = None
    block: tuple[str, ...] = ()
    min_cell_count: int = MIN_CELL_COUNT
    workers: int = 16
    idle_timeout: float = 15.0
    max_evaluations: int = 2

    def check(self) -> None:
        """Raise :class:`ServeConfigError` when the configuration is unusable."""
        if bool(self.files) == (self.server is not None):
            raise ServeConfigError("give FHIR files/folders or a server to serve, one of the two")
        if not _is_loopback(self.host) and not self.token:
            raise ServeConfigError(
                f"binding {self.host} (not loopback) needs an access token: --token-file FILE or {TOKEN_ENV}"
            )
        if self.token is not None and not self.token.strip():
            raise ServeConfigError("the access token is empty")
        if not 0 <= int(self.port) <= 65535:
            raise ServeConfigError(f"port {self.port} is not in 0..65535")
        if not self.base_path.startswith("/") or self.base_path.endswith("/"):
            raise ServeConfigError(f"base path {self.base_path!r} must start with / and not end with /")
        try:
            check_min_cell_count(self.min_cell_count)
        except ValueError as exc:
            raise ServeConfigError(str(exc)) from None
        if int(self.workers) < 1 or int(self.max_evaluations) < 1 or not float(self.idle_timeout) > 0:
            raise ServeConfigError("workers and max_evaluations must be >= 1 and idle_timeout > 0")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def measure_resource(info: AnalysisInfo, shipped: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The FHIR Measure of an analysis: the packaged one (:mod:`fhir_pts.conformance`) when there is one, else
    the one a plugin's instrument ships (``shipped``: url → Measure), else built from its
    :class:`~fhir_pts.analyses.result.AnalysisInfo` (a plugin's measure)."""
    try:
        from fhir_pts.conformance import measure

        return measure(info.id)
    except (ImportError, KeyError):
        pass
    if shipped and info.measure_url in shipped:
        return dict(shipped[info.measure_url])
    resource: dict[str, Any] = {
        "resourceType": "Measure",
        "id": info.id,
        "url": info.measure_url,
        "version": info.version,
        "name": "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", info.id) if part) or "Measure",
        "title": info.title,
        "status": "active",
        "description": info.description,
        "scoring": {"coding": [{"system": MEASURE_SCORING, "code": info.scoring}]},
    }
    if info.improvement_notation is not None:
        resource["improvementNotation"] = {
            "coding": [{"system": IMPROVEMENT_NOTATION, "code": info.improvement_notation}]
        }
    return resource


#: Evaluations kept (measure x selection of patients); each is a few kB.
CACHE_SIZE = 256


class FhirPtsServer(PooledHTTPServer):
    """The HTTP server: holds the host, the cohort read at start and the Measures.

    Connections are served by ``config.workers`` threads (:class:`~fhir_pts.serve_pool.PooledHTTPServer`).
    """

    def __init__(self, config: ServeConfig, host: FhirPtsHost, cohort: Cohort) -> None:
        self.config = config
        self.fhir_host = host
        self.cohort = cohort
        self.analyses = {info.id: info for info in host.analyses()}
        shipped = {m["url"]: m for i in getattr(cohort, "instruments", ()) for m in i.measures if "url" in m}
        self.measures = {measure_id: measure_resource(info, shipped) for measure_id, info in self.analyses.items()}
        self.started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        dates = [dt.date.fromisoformat(str(d)[:10]) for d in cohort.patients["index_date"] if isinstance(d, str) and d]
        self._index_dates = sorted(dates)
        self._cuts = {0}
        position = 0
        for block in selection_blocks(self._index_dates, config.min_cell_count):
            position += len(block)
            self._cuts.add(position)
        self._cache: OrderedDict[tuple[str, int, int], dict[str, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._key_locks: dict[tuple[str, int, int], threading.Lock] = {}
        self._evaluations = threading.BoundedSemaphore(int(config.max_evaluations))
        self.evaluations_run = 0
        if ":" in config.host:  # an IPv6 address such as ::1
            self.address_family = socket.AF_INET6
        super().__init__((config.host, int(config.port)), _Handler, workers=int(config.workers))

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}{self.config.base_path}"

    def capability_statement(self) -> dict[str, Any]:
        """The CapabilityStatement served at ``metadata``."""
        rest: dict[str, Any] = {
            "mode": "server",
            "documentation": "fhir-pts outcome analyses of venous stenting for post-thrombotic syndrome; "
            "$evaluate-measure selects the patients whose index procedure date lies in [periodStart, periodEnd].",
            "resource": [
                {
                    "type": "Measure",
                    "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": [
                        {"name": "_id", "type": "token"},
                        {"name": "url", "type": "uri"},
                    ],
                    "operation": [{"name": "evaluate-measure", "definition": EVALUATE_MEASURE}],
                }
            ],
        }
        if self.config.token:
            rest["security"] = {"description": "Send the configured access token as 'Authorization: Bearer <token>'."}
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": self.started.isoformat(),
            "kind": "instance",
            "software": {"name": "fhir-pts", "version": __version__},
            "implementation": {"description": "fhir-pts serve", "url": self.base_url},
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [rest],
        }

    def selection(self, request: EvaluateRequest) -> tuple[int, int]:
        """The patients the period selects, as a range of positions in index-date order; ``_Problem`` (422)
        when answering would show, alone or by difference with another period, fewer than
        ``min_cell_count`` patients (see :func:`fhir_pts.disclosure.selection_blocks`)."""
        lo = bisect_left(self._index_dates, request.period_start)
        hi = bisect_right(self._index_dates, request.period_end)
        k = int(self.config.min_cell_count)
        if hi > lo and (hi - lo < k or lo not in self._cuts or hi not in self._cuts):
            raise _Problem(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "business-rule",
                f"the period {request.period_start}..{request.period_end} would disclose figures about fewer than "
                f"{k} patients (on its own or against another period); choose a wider period (a period must take "
                f"in or leave out whole groups of at least {k} patients by index date)",
            )
        return lo, hi

    def evaluate(self, measure_id: str, request: EvaluateRequest) -> dict[str, Any]:
        """The summary MeasureReport of one measure over the configured data, restricted to the period, with
        disclosive figures suppressed. Computed once per measure and selection of patients."""
        lo, hi = self.selection(request)
        key = (measure_id, lo, hi)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
            lock = self._key_locks.setdefault(key, threading.Lock())
        if cached is None:
            with lock:  # one evaluation per key at a time: concurrent equal requests wait for the first
                with self._cache_lock:
                    cached = self._cache.get(key)
                if cached is None:
                    cached = self._evaluate(measure_id, request)
                    with self._cache_lock:
                        self._cache[key] = cached
                        while len(self._cache) > CACHE_SIZE:
                            self._cache.popitem(last=False)
                        self._key_locks.pop(key, None)
        report = json.loads(json.dumps(cached))
        report["period"] = {"start": request.period_start.isoformat(), "end": request.period_end.isoformat()}
        report["id"] = str(uuid.uuid4())
        if request.subject is not None:
            report = _with_subject(report, request.subject)
        return report

    def _evaluate(self, measure_id: str, request: EvaluateRequest) -> dict[str, Any]:
        from fhir_pts.outputs.suppression import suppress_report

        with self._evaluations:
            result: HostResult = self.fhir_host.analyse(
                self.cohort, analyses=[measure_id], index_period=(request.period_start, request.period_end)
            )
            self.evaluations_run += 1
        (outcome,) = result.outcomes
        if not outcome.ok:
            raise _Problem(HTTPStatus.INTERNAL_SERVER_ERROR, "exception", f"the analysis failed: {outcome.error}")
        report, _ = suppress_report(dict(result.measure_reports[0]), int(self.config.min_cell_count))
        return report


def _with_subject(report: dict[str, Any], subject: str) -> dict[str, Any]:
    """The report with ``subject`` placed where R4 orders it (after ``measure``)."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        out[key] = value
        if key == "measure":
            out["subject"] = {"reference": subject}
    return out


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
            raise _Problem(
                HTTPStatus.NOT_FOUND,
                "not-found",
                f"Measure {key!r} is not known; served: {', '.join(self.server.analyses) or 'none'}",
            )
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
        from fhir_pts.outputs.pooled import pooled_bundle

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


def build_server(config: ServeConfig) -> FhirPtsServer:
    """Check the configuration, read the data once, and bind (not yet serve) the HTTP server.

    Run it with ``server.serve_forever()`` (e.g. in a thread) and stop it with ``server.shutdown()`` and
    ``server.server_close()``. With ``port=0`` the bound port is ``server.server_address[1]``.

    Raises
    ------
    ServeConfigError: the configuration is unusable (nothing is bound).
    fhir_pts.host.HostInputError: the data cannot be read.
    """
    from fhir_pts.host import FhirPtsHost

    config.check()
    host = FhirPtsHost(
        allow=config.allow,
        block=config.block,
        concept_maps=config.concept_maps,
        min_cell_count=config.min_cell_count,
    )
    cohort = host.load(server=config.server) if config.server is not None else host.load(files=list(config.files))
    return FhirPtsServer(config, host, cohort)


# ------------------------------------------------------------------------------------------ command line


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fhir-pts serve`` (INPUT... or the server options, --host, --port, --token-file)."""
    parser.add_argument(
        "inputs", nargs="*", type=Path, metavar="INPUT", help="FHIR Bundle JSON / NDJSON files or folders to serve"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080; 0: any free port)")
    parser.add_argument(
        "--token-file",
        dest="serve_token_file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"file holding the access token clients of this server send as 'Authorization: Bearer' (or set "
        f"{TOKEN_ENV}); a hospital server's own bearer token comes from FHIR_PTS_TOKEN(_FILE) or --config",
    )
    parser.add_argument(
        "--concept-map", action="append", default=[], metavar="FILE|CANONICAL",
        help="FHIR ConceptMap: a file, or a canonical URL read from the --server (repeatable)"
    )
    parser.add_argument("--base-path", default="/fhir", help="FHIR base path (default /fhir)")
    add_min_cell_count_argument(parser)
    from fhir_pts.sources.server.config import add_server_arguments

    add_server_arguments(parser)


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    path = args.serve_token_file
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServeConfigError(f"token file {path} cannot be read ({exc.strerror or exc})") from exc
        if not token:
            raise ServeConfigError(f"token file {path} is empty")
        from fhir_pts.sources.private_files import warn_if_exposed

        warn_if_exposed(path, "token file")
        return token
    return environ.get(TOKEN_ENV) or None


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """The :class:`ServeConfig` of parsed ``fhir-pts serve`` arguments (token from file or environment)."""
    environ = os.environ if environ is None else environ
    from fhir_pts.sources.server.config import server_config_from_args

    try:
        server = server_config_from_args(args, environ)
    except Exception as exc:
        raise ServeConfigError(str(exc)) from exc
    config = ServeConfig(
        files=tuple(args.inputs),
        server=server,
        host=args.host,
        port=args.port,
        token=_token(args, environ),
        base_path=args.base_path,
        concept_maps=tuple(args.concept_map),
        min_cell_count=getattr(args, "min_cell_count", MIN_CELL_COUNT),
    )
    config.check()
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    """``fhir-pts serve``: serve until interrupted. Returns 0, or 2 for an unusable configuration or input."""
    from fhir_pts.host import HostInputError

    try:
        server = build_server(config_from_args(args))
    except (ServeConfigError, HostInputError, OSError) as exc:
        print(f"fhir-pts serve: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"fhir-pts serve: {len(server.cohort)} patients, {len(server.analyses)} measures at {server.base_url}"
        + (" (access token required)" if server.config.token else ""),
        file=sys.stderr,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("fhir-pts serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def serve_main(argv: Sequence[str] | None = None) -> int:
    """``python -m fhir_pts.serve [options]``: the same as ``fhir-pts serve``."""
    parser = argparse.ArgumentParser(prog="fhir-pts serve", description="Serve the analyses as a FHIR R4 server.")
    add_serve_arguments(parser)
    return cmd_serve(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(serve_main())
