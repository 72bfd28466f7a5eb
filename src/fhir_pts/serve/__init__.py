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

from fhir_pts.serve.command import _token as _token
from fhir_pts.serve.command import add_serve_arguments, cmd_serve, config_from_args, serve_main
from fhir_pts.serve.fhir import TOKEN_ENV, FhirPtsServer, ServeConfig, ServeConfigError, build_server, measure_resource

__all__ = [
    "TOKEN_ENV",
    "FhirPtsServer",
    "ServeConfig",
    "ServeConfigError",
    "add_serve_arguments",
    "build_server",
    "cmd_serve",
    "config_from_args",
    "measure_resource",
    "serve_main",
]
