"""The FHIR part of ``fhir-pts serve``: its configuration, the Measures it offers, the CapabilityStatement and
``$evaluate-measure`` over the cohort read at start (with small-cell selection rules and a cache)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import socket
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts import __version__
from fhir_pts.analyses.api import AnalysisInfo
from fhir_pts.codes import MEASURE_SCORING
from fhir_pts.disclosure import MIN_CELL_COUNT, check_min_cell_count, selection_blocks
from fhir_pts.serve.http import _Handler
from fhir_pts.serve_parameters import EvaluateRequest, Problem
from fhir_pts.serve_pool import PooledHTTPServer

_Problem = Problem


if TYPE_CHECKING:
    from fhir_pts.cohort.model import Cohort
    from fhir_pts.host import FhirPtsHost, HostResult
    from fhir_pts.pipeline import ServerConfig

log = logging.getLogger("fhir_pts.serve")

#: Environment variable holding the access token (alternative to ``--token-file``).
TOKEN_ENV = "FHIR_PTS_SERVE_TOKEN"
EVALUATE_MEASURE = "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure"
IMPROVEMENT_NOTATION = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"


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
    :class:`~fhir_pts.analyses.api.AnalysisInfo` (a plugin's measure)."""
    from fhir_pts.pipeline import packaged_measure

    packaged = packaged_measure(info.id)
    if packaged is not None:
        return packaged
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
        from fhir_pts.pipeline import suppress_report

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
