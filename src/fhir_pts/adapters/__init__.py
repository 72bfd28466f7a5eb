"""Adapters: pure functions from one FHIR R4 resource (a dict) to cohort facts and problems.

They depend on nothing but the resource and the loaded ConceptMaps, so the same mapping runs in this
process, in worker processes, or inside another engine (e.g. a Spark ``mapPartitions``)::

    from fhir_pts.adapters import adapt_resource
    output = adapt_resource(resource)   # AdapterOutput(facts, problems, relevant, key, version)

Reading files and resolving duplicates is the engines' work (:mod:`fhir_pts.engines`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_pts.adapters.adverse_event import adapt_adverse_event
from fhir_pts.adapters.common import AdapterOutput, ProblemSink, VersionKey, irrelevant
from fhir_pts.adapters.concept_map import ConceptMapTranslator
from fhir_pts.adapters.observation import adapt_observation
from fhir_pts.adapters.patient import adapt_patient
from fhir_pts.adapters.procedure import adapt_procedure
from fhir_pts.adapters.questionnaire_response import adapt_questionnaire_response
from fhir_pts.vocabulary import Vocabulary

_ADAPTERS: dict[str, Callable[[dict[str, Any], Vocabulary, ProblemSink], AdapterOutput]] = {
    "Patient": lambda resource, _vocabulary, sink: adapt_patient(resource, sink),
    "Procedure": adapt_procedure,
    "Observation": adapt_observation,
    "QuestionnaireResponse": lambda resource, vocabulary, sink: adapt_questionnaire_response(
        resource, sink, vocabulary
    ),
    "AdverseEvent": adapt_adverse_event,
}
#: Resource types the adapters read; every other type is irrelevant.
ADAPTED_TYPES: frozenset[str] = frozenset(_ADAPTERS)

_PLAIN = Vocabulary()


def adapt_resource(
    resource: dict[str, Any], concepts: ConceptMapTranslator | Vocabulary | None = None
) -> AdapterOutput:
    """The facts and problems of one FHIR R4 resource (a JSON dict).

    :param resource: the resource as parsed JSON.
    :param concepts: loaded ConceptMaps (site-local codes that map to contract codes also match).
    :returns: an :class:`AdapterOutput`. Resources of other types, or of these types but carrying none of
        the contract's codes, are ``relevant=False`` with no facts and no problems. A relevant resource
        without an ``id`` gives no fact and one problem (it could not be de-duplicated or referenced).
    """
    resource_type = resource.get("resourceType")
    adapter = _ADAPTERS.get(resource_type) if isinstance(resource_type, str) else None
    if adapter is None:
        return irrelevant()
    if concepts is None:
        vocabulary = _PLAIN
    elif isinstance(concepts, Vocabulary):
        vocabulary = concepts
    else:
        vocabulary = Vocabulary.of(concepts)
    resource_id = resource.get("id")
    written_id = resource_id
    if resource_id is not None and not isinstance(resource_id, str):
        resource_id = None  # 123 or 1.0 is not a FHIR id; "123" is: never guess which one was meant
    assert isinstance(resource_type, str)
    sink = ProblemSink(resource_type, resource_id or None)
    output = adapter(resource, vocabulary, sink)
    if not output.relevant:
        return output
    if not resource_id:
        problem_sink = ProblemSink(resource_type, None, sink.patient_id)
        if written_id is not None and not isinstance(written_id, str):
            problem_sink.add(
                "id", f"{str(written_id)[:40]} is not a string: expected a FHIR id (a JSON string); skipped"
            )
        else:
            problem_sink.add(
                "id", "missing: expected a resource id (needed to resolve duplicates and references); skipped"
            )
        return AdapterOutput([], problem_sink.problems)
    output.key = (resource_type, resource_id)
    output.version = VersionKey.of(resource)
    return output


__all__ = [
    "ADAPTED_TYPES",
    "AdapterOutput",
    "ConceptMapTranslator",
    "VersionKey",
    "Vocabulary",
    "adapt_resource",
]
