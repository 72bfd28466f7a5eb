"""``Patient`` → :class:`~fhir_pts.adapters.facts.PatientFact` (sex and birth date, for age at day 0)."""

from __future__ import annotations

from typing import Any

from fhir_pts.adapters.common import AdapterOutput, ProblemSink, parse_day
from fhir_pts.adapters.facts import PatientFact

#: FHIR administrative-gender codes.
GENDERS: frozenset[str] = frozenset({"male", "female", "other", "unknown"})


def adapt_patient(resource: dict[str, Any], sink: ProblemSink) -> AdapterOutput:
    """Every Patient is relevant: ``gender`` and ``birthDate``.

    Reported (the patient is kept, the value left ``None``): a ``gender`` that is not an administrative-gender
    code; a ``birthDate`` that is partial (``1970``, ``1970-05``: no age in whole years can be computed) or
    invalid. A missing ``gender`` / ``birthDate`` is not reported here (the cohort counts missing values).
    """
    sink.patient_id = sink.resource_id
    gender = resource.get("gender")
    if gender is not None and not (isinstance(gender, str) and gender in GENDERS):
        sink.add("gender", f"{gender!r} is not an administrative gender (male, female, other, unknown); left missing")
        gender = None
    written = resource.get("birthDate")
    birth_date = parse_day(written)
    if written is not None and birth_date is None:
        sink.add("birthDate", f"{written!r} is not a full date YYYY-MM-DD: no age can be computed; left missing")
    fact = PatientFact(resource_id=str(sink.resource_id), gender=gender, birth_date=birth_date)
    return AdapterOutput([fact], sink.problems)
