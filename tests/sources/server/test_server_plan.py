"""The fetch plan from a CapabilityStatement, the refused-type parser, and what counts as a transient answer."""

from __future__ import annotations

import pytest
import requests

from fhir_pts.sources.server.bulk import refused_type
from fhir_pts.sources.server.discovery import ServerCapabilities
from fhir_pts.sources.server.http import RetryPolicy, ServerError, is_transient
from fhir_pts.sources.server.plan import CONTRACT_TYPES, plan_fetch


def caps(interactions: dict[str, set[str]], system_ops: set[str] = frozenset(),  # type: ignore[assignment]
         type_ops: dict[str, set[str]] | None = None, params: dict[str, set[str]] | None = None) -> ServerCapabilities:
    return ServerCapabilities("http://127.0.0.1/fhir", "4.0.1",
                              interactions={k: frozenset(v) for k, v in interactions.items()},
                              system_operations=frozenset(system_ops),
                              type_operations={k: frozenset(v) for k, v in (type_ops or {}).items()},
                              search_params={k: frozenset(v) for k, v in (params or {}).items()})


def test_search_plan_leaves_out_types_without_search() -> None:
    c = caps({t: {"read", "search-type"} for t in ("Patient", "Procedure", "Observation")} | {"AdverseEvent": {"read"}})
    plan = plan_fetch(c, bulk=False)
    assert plan.types == ["Patient", "Procedure", "Observation"]
    assert list(plan.unavailable) == ["QuestionnaireResponse", "AdverseEvent"]  # not listed, or listed without search


def test_search_on_a_bulk_only_server_says_use_bulk() -> None:
    c = caps({t: {"read"} for t in CONTRACT_TYPES}, system_ops={"export"})
    with pytest.raises(ServerError, match=r"no search for Procedure \(CapabilityStatement\); use --bulk"):
        plan_fetch(c, bulk=False)


def test_no_resource_list_means_nothing_concluded() -> None:
    plan = plan_fetch(caps({}), bulk=False)
    assert plan.types == list(CONTRACT_TYPES) and not plan.unavailable


def test_bulk_plan_levels_and_type_filter() -> None:
    c = caps({"Patient": {"read"}}, system_ops={"export"}, type_ops={"Patient": {"export"}},
             params={"Observation": {"code", "date"}})
    plan = plan_fetch(c, bulk=True, level="group")
    assert plan.export_levels == {"system", "patient"}
    assert any("trying group level anyway" in n for n in plan.notes)
    assert plan.type_filter and "not declared" in plan.type_filter_why
    assert plan.undeclared == ["Procedure", "Observation", "QuestionnaireResponse", "AdverseEvent"]
    assert not plan_fetch(c, bulk=True, type_filter=False).type_filter
    no_code = caps({"Patient": {"read"}}, params={"Observation": {"date"}})
    assert not plan_fetch(no_code, bulk=True).type_filter


def test_refused_type() -> None:
    types = ["Patient", "Procedure", "QuestionnaireResponse", "AdverseEvent"]
    assert refused_type('The requested resource type "AdverseEvent" is not available on this server', types) \
        == "AdverseEvent"
    assert refused_type("Resource type QuestionnaireResponse is not supported", types) == "QuestionnaireResponse"
    assert refused_type("Patient and Procedure are both wrong", types) is None
    assert refused_type("bad _since", types) is None


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code, r._content = status, body
    r.headers.update(headers or {})
    return r


def test_transient_answers() -> None:
    transient = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"}]}'
    fatal = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}'
    assert is_transient(_response(500, transient))
    assert not is_transient(_response(500, fatal)) and not is_transient(_response(500, b"<html>"))
    assert all(is_transient(_response(s)) for s in (429, 502, 503, 504))
    assert not is_transient(_response(400, transient)) and not is_transient(_response(410))
    policy = RetryPolicy(retries=3, backoff_factor=0.5, backoff_max=1.5, retry_after_max=10)
    assert [policy.wait(n) for n in range(4)] == [0.5, 1.0, 1.5, 1.5]
    assert policy.wait(0, _response(503, headers={"Retry-After": "4"})) == 4
    assert policy.wait(0, _response(503, headers={"Retry-After": "400"})) == 10
