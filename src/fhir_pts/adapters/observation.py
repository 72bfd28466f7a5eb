"""``Observation`` → patency findings and instrument totals.

- ``pts#stent-patency`` → :class:`~fhir_pts.adapters.facts.PatencyFindingFact`;
- an instrument's total code (``pts#villalta-total`` 0–33, ``pts#civiq20-total`` 20–100 raw sum, a plugin's,
  from the :class:`~fhir_pts.vocabulary.Vocabulary`'s instruments) →
  :class:`~fhir_pts.adapters.facts.ScoreAssessmentFact` with ``total`` set and no items.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal, cast

from fhir_pts import codes
from fhir_pts.adapters.common import (
    AdapterOutput,
    ProblemSink,
    accepted_patient,
    choice_day,
    codings,
    concept_fault,
    irrelevant,
    reference_id,
    show,
)
from fhir_pts.adapters.facts import PatencyFindingFact, PatencyStatus, ScoreAssessmentFact
from fhir_pts.instruments.builtin import BUILTIN_INDEX
from fhir_pts.instruments.model import TotalSpec
from fhir_pts.vocabulary import Vocabulary

ImagingMethod = Literal["ultrasound", "ct"]

#: The contract's total codes and their instruments.
TOTALS = BUILTIN_INDEX.totals


#: ``codes.PATENCY_VALUE`` with the fact's literal type.
_PATENCY: dict[tuple[str, str], PatencyStatus] = {
    coding: cast(PatencyStatus, status) for coding, status in codes.PATENCY_VALUE.items()
}


def patency_from_percent(reduction: float) -> PatencyStatus:
    """Patency status of a % diameter reduction (0–100): 100 → occluded, > 50 → stenosis, else patent."""
    if reduction >= 100:
        return "occluded"
    if reduction > 50:
        return "stenosis"
    return "patent"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def adapt_observation(resource: dict[str, Any], vocabulary: Vocabulary, sink: ProblemSink) -> AdapterOutput:
    """A patency finding or a score total; Observations with other codes are irrelevant.

    Day = calendar date of ``effectiveDateTime``, else ``effectivePeriod.start`` (else ``effectiveInstant``).

    Patency value: ``valueCodeableConcept`` ``pts#patent`` / ``pts#stenosis`` / ``pts#occluded`` (or mapped),
    or ``valueQuantity`` in ``%`` diameter reduction, 0–100 (100 → occluded, > 50 → stenosis, else patent).
    ``method`` SNOMED 16310003 → ultrasound, 77477000 → CT (else ``None``; an unknown method is a warning).

    Totals: ``valueInteger`` (or a ``valueQuantity``) in the instrument's range, a whole number when its score
    is (Villalta a whole number 0–33, CIVIQ-20 20–100: the raw sum, fractional when items were imputed).

    Reported and skipped: status other than final/amended/corrected, no patient, no full date, a value
    missing, of the wrong type, out of range or not a known code.
    """
    code_codings = vocabulary.expanded(resource.get("code"))
    is_patency = codes.STENT_PATENCY in code_codings
    totals = vocabulary.instrument_index.totals
    total = next((totals[c] for c in code_codings if c in totals), None)
    if not is_patency and total is None:
        fault = concept_fault(resource.get("code"))
        if fault is None:
            return irrelevant()
        sink.patient_id = reference_id(resource.get("subject"), "Patient")
        sink.add("code", f"{fault}: cannot tell whether it is a patency finding or a score total; skipped")
        return AdapterOutput([], sink.problems)
    patient_id = accepted_patient(
        resource, sink, codes.OBSERVATION_STATUSES, "final, amended or corrected", "observation"
    )
    if patient_id is None:
        return AdapterOutput([], sink.problems)
    day = choice_day(resource, "effective", sink, instant=True)
    if day is None:
        return AdapterOutput([], sink.problems)
    if is_patency:
        return _patency(resource, vocabulary, sink, patient_id, day)
    assert total is not None
    return _total(resource, sink, patient_id, day, total)


def _patency(
    resource: dict[str, Any], vocabulary: Vocabulary, sink: ProblemSink, patient_id: str, day: dt.date
) -> AdapterOutput:
    status: PatencyStatus | None = None
    if "valueCodeableConcept" in resource:
        concept = resource["valueCodeableConcept"]
        status = next((_PATENCY[c] for c in vocabulary.expanded(concept) if c in _PATENCY), None)
        if status is None:
            sink.add(
                "valueCodeableConcept",
                f"{show(codings(concept))}: expected pts#patent, pts#stenosis or pts#occluded; finding skipped",
            )
            return AdapterOutput([], sink.problems)
    elif "valueQuantity" in resource:
        quantity = resource["valueQuantity"] if isinstance(resource["valueQuantity"], dict) else {}
        unit = quantity.get("code", quantity.get("unit"))
        value = _number(quantity.get("value"))
        if unit != "%":
            sink.add("valueQuantity", f"unit {unit!r}: expected '%' (diameter reduction); finding skipped")
            return AdapterOutput([], sink.problems)
        if value is None or not 0 <= value <= 100:
            sink.add(
                "valueQuantity.value",
                f"{quantity.get('value')!r}: expected a diameter reduction between 0 and 100 %; finding skipped",
            )
            return AdapterOutput([], sink.problems)
        status = patency_from_percent(value)
    else:
        sink.add(
            "value[x]",
            "missing: expected valueCodeableConcept (patent/stenosis/occluded) or valueQuantity (%); finding skipped",
        )
        return AdapterOutput([], sink.problems)
    method_codings = codings(resource.get("method"))
    method = None
    for coding in vocabulary.expanded(resource.get("method")):
        if coding in codes.IMAGING_METHOD:
            method = codes.IMAGING_METHOD[coding]
            break
    if method is None and resource.get("method") is not None:
        sink.add(
            "method",
            f"{show(method_codings)}: not SNOMED 16310003 (ultrasound) or 77477000 (CT); method left unknown",
            "warning",
        )
    fact = PatencyFindingFact(str(sink.resource_id), patient_id, day, status, cast(ImagingMethod | None, method))
    return AdapterOutput([fact], sink.problems)


def _show(bound: float) -> int | float:
    """A range bound as written in messages (``33``, not ``33.0``)."""
    return int(bound) if float(bound).is_integer() else bound


def _total(
    resource: dict[str, Any],
    sink: ProblemSink,
    patient_id: str,
    day: dt.date,
    spec: TotalSpec,
) -> AdapterOutput:
    low, high = _show(spec.low), _show(spec.high)
    if "valueInteger" in resource:
        field_name, written = "valueInteger", resource["valueInteger"]
    elif "valueQuantity" in resource and isinstance(resource["valueQuantity"], dict):
        field_name, written = "valueQuantity.value", resource["valueQuantity"].get("value")
    else:
        sink.add("value[x]", f"missing: expected valueInteger {low}–{high}; assessment skipped")
        return AdapterOutput([], sink.problems)
    value = _number(written)
    # Villalta: "value integer 0–33"; CIVIQ-20: "value 20–100 (raw sum)", fractional after imputation (§1, §2)
    whole = spec.integer
    if value is None or (whole and not value.is_integer()) or not spec.low <= value <= spec.high:
        expected = "a whole number" if whole else "a number"
        sink.add(field_name, f"{written!r}: expected {expected} {low}–{high}; assessment skipped")
        return AdapterOutput([], sink.problems)
    fact = ScoreAssessmentFact(
        resource_id=str(sink.resource_id),
        patient_id=patient_id,
        day=day,
        instrument=spec.instrument,
        items=(),
        total=int(value) if value.is_integer() else value,
        resource_type="Observation",
    )
    return AdapterOutput([fact], sink.problems)
