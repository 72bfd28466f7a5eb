"""No resource, however malformed, makes an adapter raise: bad records are problems, never a crashed run."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_pts import codes
from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.common import AdapterOutput

from .factories import adverse_event, civiq_items, patency, patient, procedure, questionnaire_response, villalta_items

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)

VALID = [
    patient(),
    procedure(body_sites=[(codes.SNOMED, "46027005")], outcome=[(codes.SNOMED, "385669000")],
              complication=[(codes.PTS_SYSTEM, "major-complication")], reason_reference=["Observation/o"]),
    patency(method="16310003"),
    patency(percent=70),
    questionnaire_response(items=villalta_items()),
    questionnaire_response(questionnaire=codes.CIVIQ20_QUESTIONNAIRE, items=civiq_items()),
    adverse_event(),
]  # fmt: skip


def _paths(value, prefix=()):
    """Every (path, value) inside a JSON value."""
    yield prefix, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data(), JSON)
def test_replacing_any_element_with_any_json_never_raises(resource, data, junk):
    paths = [path for path, _ in _paths(resource) if path and path != ("resourceType",)]
    path = data.draw(st.sampled_from(paths))
    broken = _replace(resource, path, junk)
    output = adapt_resource(broken)
    assert isinstance(output, AdapterOutput)
    for problem in output.problems:
        assert problem.resource_type == resource["resourceType"] and problem.field and problem.reason


@given(st.dictionaries(st.sampled_from(["resourceType", "id", "status", "code", "subject", "item", "meta"]), JSON))
def test_arbitrary_objects_never_raise(resource):
    assert isinstance(adapt_resource(resource), AdapterOutput)
