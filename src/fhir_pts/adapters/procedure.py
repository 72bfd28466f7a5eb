"""``Procedure`` → :class:`~fhir_pts.adapters.facts.ProcedureFact` for venous stenting and reinterventions."""

from __future__ import annotations

from typing import Any, Literal

from fhir_pts import codes
from fhir_pts.adapters.common import (
    AdapterOutput,
    ProblemSink,
    accepted_patient,
    as_list,
    choice_day,
    codings,
    concept_fault,
    irrelevant,
    reference_id,
    show,
)
from fhir_pts.adapters.facts import Outcome, ProcedureFact
from fhir_pts.codes import Coding
from fhir_pts.vocabulary import Vocabulary

_SNOMED_SEGMENTS: frozenset[Coding] = frozenset((codes.SNOMED, code) for code in codes.SNOMED_SEGMENT)


def is_icd10pcs_reintervention(coding: Coding) -> bool:
    """ICD-10-PCS ``067?3ZZ`` (venous dilation without device) or ``06C?3ZZ`` (venous extirpation)."""
    system, code = coding
    return (
        system == codes.ICD10PCS
        and len(code) == 7
        and any(code.startswith(head) and code.endswith(tail) for head, tail in codes.ICD10PCS_REINTERVENTION_PREFIXES)
    )


def icd10pcs_segment(coding: Coding) -> str | None:
    """The segment named by the body-part character (4th) of an ICD-10-PCS ``067?3DZ`` stenting code."""
    system, code = coding
    if system == codes.ICD10PCS and code in codes.ICD10PCS_STENTING:
        return codes.ICD10PCS_BODY_PART_SEGMENT.get(code[3])
    return None


def adapt_procedure(resource: dict[str, Any], vocabulary: Vocabulary, sink: ProblemSink) -> AdapterOutput:
    """A completed venous stenting or reintervention Procedure as a fact; other Procedures are irrelevant.

    Recognised by ``code`` (contract §1: CPT 37238/37239, ICD-10-PCS ``067?3DZ``, ``pts#venous-stenting`` =
    stenting; CPT 37248/37249/37187/37188/37212/37214, ICD-10-PCS ``067?3ZZ``/``06C?3ZZ``,
    ``pts#reintervention`` = reintervention), directly or through a ConceptMap.

    Day = calendar date of ``performedDateTime``, else ``performedPeriod.start``. Segments = SNOMED
    ``bodySite`` segments, else the body parts of the Procedure's own ICD-10-PCS stenting codes. Outcome:
    any failure code → failure, else any success code → success, else ``None``. Reason: ``reasonCode``
    ``pts#occlusion`` (wins) / ``pts#stenosis``; ``reasonReference`` Observation ids kept.

    Reported and skipped: status other than ``completed``, no patient subject, no full date. Reported as
    warnings (fact kept): a ``bodySite`` with no recognised segment, an ``outcome`` / ``complication``
    coded with nothing the contract knows, a reintervention ``reasonCode`` that is neither stenosis nor
    occlusion.
    """
    code_codings = vocabulary.expanded(resource.get("code"))
    is_stenting = any(c in codes.VENOUS_STENTING for c in code_codings)
    is_reintervention = any(c in codes.REINTERVENTION or is_icd10pcs_reintervention(c) for c in code_codings)
    if not (is_stenting or is_reintervention):
        fault = concept_fault(resource.get("code"))
        if fault is None:
            return irrelevant()
        sink.patient_id = reference_id(resource.get("subject"), "Patient")
        sink.add("code", f"{fault}: cannot tell whether it is a stenting or reintervention; procedure skipped")
        return AdapterOutput([], sink.problems)
    patient_id = accepted_patient(resource, sink, codes.PROCEDURE_STATUSES, "'completed'", "procedure")
    if patient_id is None:
        return AdapterOutput([], sink.problems)
    day = choice_day(resource, "performed", sink)
    if day is None:
        return AdapterOutput([], sink.problems)

    segments: set[str] = set()
    body_sites = resource.get("bodySite")
    unrecognised: list[Coding] = []
    for coding in codings(body_sites):
        found = [codes.SNOMED_SEGMENT[c] for s, c in vocabulary.expand(coding) if (s, c) in _SNOMED_SEGMENTS]
        segments.update(found)
        if not found:
            unrecognised.append(coding)
    if segments and unrecognised:
        sink.add(
            "bodySite",
            f"{show(unrecognised)}: not a recognised venous segment (expected SNOMED CT "
            f"{', '.join(codes.SNOMED_SEGMENT)}); not counted in the stented segments",
            "warning",
        )
    if body_sites and not segments:
        sink.add(
            "bodySite",
            f"{show(codings(body_sites))}: no recognised venous segment (expected SNOMED CT "
            f"{', '.join(codes.SNOMED_SEGMENT)}); ICD-10-PCS body part used if any",
            "warning",
        )
    segments_source: Literal["bodySite", "icd10pcs"] | None = "bodySite" if segments else None
    if not segments:
        segments = {segment for c in code_codings if (segment := icd10pcs_segment(c)) is not None}
        segments_source = "icd10pcs" if segments else None

    outcome: Outcome | None = None
    outcome_codings = vocabulary.expanded(resource.get("outcome"))
    if any(c in codes.TECHNICAL_FAILURE for c in outcome_codings):
        outcome = "failure"
    elif any(c in codes.TECHNICAL_SUCCESS for c in outcome_codings):
        outcome = "success"
    elif resource.get("outcome") is not None:
        sink.add(
            "outcome",
            f"{show(codings(resource.get('outcome')))}: not a success/failure code (expected SNOMED 385669000, "
            "385671000, 385670004 or pts#technical-success/technical-failure); outcome unknown",
            "warning",
        )

    complications = resource.get("complication")
    major = codes.MAJOR_COMPLICATION in vocabulary.expanded(complications)
    if complications and not major:
        sink.add(
            "complication",
            f"{show(codings(complications))}: not pts#major-complication, so not counted as a major complication",
            "warning",
        )

    reason_codings = vocabulary.expanded(resource.get("reasonCode"))
    reason: Literal["stenosis", "occlusion"] | None = None
    if codes.REASON_OCCLUSION in reason_codings:
        reason = "occlusion"
    elif codes.REASON_STENOSIS in reason_codings:
        reason = "stenosis"
    reason_ids: list[str] = []
    for ref in as_list(resource.get("reasonReference")):
        observation_id = reference_id(ref, "Observation")
        if observation_id is not None and observation_id not in reason_ids:
            reason_ids.append(observation_id)
    if reason is None and reason_codings and is_reintervention and not is_stenting and not reason_ids:
        sink.add(
            "reasonCode",
            f"{show(codings(resource.get('reasonCode')))}: neither pts#stenosis nor pts#occlusion; the reason is "
            "taken from the patency findings",
            "warning",
        )

    fact = ProcedureFact(
        resource_id=str(sink.resource_id),
        patient_id=patient_id,
        day=day,
        is_stenting=is_stenting,
        is_reintervention_code=is_reintervention,
        segments=frozenset(segments),
        outcome=outcome,
        major_complication=major,
        reason=reason,
        reason_observation_ids=tuple(reason_ids),
        segments_source=segments_source,
    )
    return AdapterOutput([fact], sink.problems)
