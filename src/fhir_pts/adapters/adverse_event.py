"""``AdverseEvent`` → :class:`~fhir_pts.adapters.facts.AdverseEventFact` (a serious event of a Procedure)."""

from __future__ import annotations

from typing import Any

from fhir_pts import codes
from fhir_pts.adapters.common import (
    AdapterOutput,
    ProblemSink,
    as_list,
    irrelevant,
    reference_id,
    subject_or_problem,
)
from fhir_pts.adapters.facts import AdverseEventFact
from fhir_pts.vocabulary import Vocabulary


def adapt_adverse_event(resource: dict[str, Any], vocabulary: Vocabulary, sink: ProblemSink) -> AdapterOutput:
    """A serious AdverseEvent whose ``suspectEntity.instance`` references Procedures.

    Serious = ``seriousness`` coded ``adverse-event-seriousness#serious`` (or mapped to it). Non-serious events
    are irrelevant (no fact, no problem). Reported and skipped: ``actuality`` ``potential`` (a near miss, not
    an event), no patient ``subject``, no ``suspectEntity.instance`` referencing a Procedure (``Procedure/<id>``
    or ``urn:uuid:<id>``: nothing to link the event to the index procedure).
    """
    if codes.AE_SERIOUS not in vocabulary.expanded(resource.get("seriousness")):
        return irrelevant()
    if resource.get("actuality") == "potential":
        sink.add("actuality", "'potential' (a near miss): expected 'actual'; event not counted")
        return AdapterOutput([], sink.problems)
    patient_id = subject_or_problem(resource, sink)
    if patient_id is None:
        return AdapterOutput([], sink.problems)
    procedure_ids: list[str] = []
    for entity in as_list(resource.get("suspectEntity")):
        instance = entity.get("instance") if isinstance(entity, dict) else None
        procedure_id = reference_id(instance, "Procedure")
        if procedure_id is not None and procedure_id not in procedure_ids:
            procedure_ids.append(procedure_id)
    if not procedure_ids:
        sink.add(
            "suspectEntity.instance",
            "no reference to a Procedure (expected Procedure/<id>): the event cannot be linked to the index "
            "procedure; not counted",
        )
        return AdapterOutput([], sink.problems)
    fact = AdverseEventFact(str(sink.resource_id), patient_id, True, tuple(procedure_ids))
    return AdapterOutput([fact], sink.problems)
