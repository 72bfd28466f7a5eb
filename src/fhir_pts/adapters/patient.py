"""``Patient`` → :class:`~fhir_pts.adapters.facts.PatientFact` (sex and birth date, for age at day 0)."""

from __future__ import annotations

from typing import Any

from fhir_pts.adapters.common import AdapterOutput, ProblemSink, implausible, is_partial_date, parse_day
from fhir_pts.adapters.facts import PatientFact

#: FHIR administrative-gender codes.
GENDERS: frozenset[str] = frozenset({"male", "female", "other", "unknown"})


def adapt_patient(resource: dict[str, Any], sink: ProblemSink) -> AdapterOutput:
    """Every Patient is relevant: ``gender`` and ``birthDate``.

    Reported (the patient is kept, the value left ``None``): a ``gender`` that is not an administrative-gender
    code; a ``birthDate`` that is partial (``1970``, ``1970-05``: no age in whole years can be computed),
    invalid or ``null``. Warned (used): a birth date before 1900 or after today. A missing ``gender`` /
    ``birthDate`` is not reported here (the cohort counts missing values).
    """
    sink.patient_id = sink.resource_id
    gender = resource.get("gender")
    if gender is not None and not (isinstance(gender, str) and gender in GENDERS):
        sink.add("gender", f"{gender!r} is not an administrative gender (male, female, other, unknown); left missing")
        gender = None
    written = resource.get("birthDate")
    birth_date = parse_day(written)
    if "birthDate" in resource and written is None:
        sink.add("birthDate", "null (not valid FHIR: leave the element out): no age can be computed; left missing")
    elif written is not None and birth_date is None:
        kind = "a partial date" if is_partial_date(written) else "not a FHIR date"
        sink.add("birthDate", f"{written!r} is {kind}, expected YYYY-MM-DD: no age can be computed; left missing")
    elif birth_date is not None and (why := implausible(birth_date)) is not None:
        sink.add("birthDate", f"implausible birth date: {why}; used as written", "warning")
    fact = PatientFact(resource_id=str(sink.resource_id), gender=gender, birth_date=birth_date)
    return AdapterOutput([fact], sink.problems)
