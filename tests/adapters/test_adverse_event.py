"""AdverseEvent adapter: serious events linked to Procedures."""

from __future__ import annotations

from fhir_pts import codes
from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.facts import AdverseEventFact

from .factories import adverse_event


def test_serious_event_with_procedure_references():
    resource = adverse_event(procedures=["Procedure/p1", "urn:uuid:p2", "https://x.org/fhir/Procedure/p3", "Device/d"])
    assert adapt_resource(resource).facts == [AdverseEventFact("ae1", "pat1", True, ("p1", "p2", "p3"))]


def test_non_serious_event_is_irrelevant():
    output = adapt_resource(adverse_event(seriousness=(codes.AE_SERIOUSNESS, "non-serious")))
    assert output.relevant is False and output.problems == []
    assert adapt_resource(adverse_event(seriousness=None)).relevant is False


def test_serious_event_without_procedure_is_reported():
    output = adapt_resource(adverse_event(procedures=["Medication/m1"]))
    assert output.facts == []
    [problem] = output.problems
    assert (problem.resource_type, problem.field) == ("AdverseEvent", "suspectEntity.instance")


def test_potential_event_is_reported_not_counted():
    output = adapt_resource(adverse_event(actuality="potential"))
    assert output.facts == [] and [p.field for p in output.problems] == ["actuality"]


def test_event_without_subject_is_reported():
    output = adapt_resource(adverse_event(subject=None))
    assert output.facts == [] and [p.field for p in output.problems] == ["subject"]
