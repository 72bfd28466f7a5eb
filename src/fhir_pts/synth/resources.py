"""Builders of the FHIR R4 resources both synthetic cohorts are made of, in the contract's §1 encodings.

Every builder returns a plain ``dict`` (R4 JSON), cheap enough to build millions of. Dates are ``datetime.date``
calendar days; builders turn them into ``date`` / ``dateTime`` strings (a clinic-local time and offset are added
where FHIR expects a ``dateTime``; the contract reads only the calendar date). References are relative
(``Patient/<id>``). Codes come from :mod:`fhir_pts.codes`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from fhir_pts import codes
from fhir_pts.instruments.model import Instrument

Resource = dict[str, Any]
AnswerEncoding = Literal["integer", "coding"]

#: SNOMED CT body-site code of each segment (contract §1), inverse of :data:`fhir_pts.codes.SNOMED_SEGMENT`.
SEGMENT_SNOMED: dict[str, str] = {segment: code for code, segment in codes.SNOMED_SEGMENT.items()}
SEGMENT_DISPLAY: dict[str, str] = {
    "inferior_vena_cava": "inferior vena cava",
    "common_iliac_vein": "common iliac vein",
    "external_iliac_vein": "external iliac vein",
    "common_femoral_vein": "common femoral vein",
    "femoral_vein": "femoral vein",
    "deep_femoral_vein": "deep femoral vein",
}
#: ICD-10-PCS body-part character (4th) per (segment, side); ``None`` where ICD-10-PCS has no own body part.
ICD10PCS_BODY_PART: dict[tuple[str, str], str] = {
    ("inferior_vena_cava", "left"): "0",
    ("inferior_vena_cava", "right"): "0",
    ("common_iliac_vein", "right"): "C",
    ("common_iliac_vein", "left"): "D",
    ("external_iliac_vein", "right"): "F",
    ("external_iliac_vein", "left"): "G",
    ("femoral_vein", "right"): "M",
    ("femoral_vein", "left"): "N",
}
ICD10PCS_ENCODABLE: frozenset[str] = frozenset(s for s, _ in ICD10PCS_BODY_PART)

OUTCOME_CODINGS: dict[str, Resource] = {
    "snomed-success": {"system": codes.SNOMED, "code": "385669000", "display": "Successful"},
    "snomed-failure": {"system": codes.SNOMED, "code": "385671000", "display": "Unsuccessful"},
    "snomed-partial": {"system": codes.SNOMED, "code": "385670004", "display": "Partially successful"},
    "pts-success": {"system": codes.PTS_SYSTEM, "code": "technical-success"},
    "pts-failure": {"system": codes.PTS_SYSTEM, "code": "technical-failure"},
}
METHOD_CODINGS: dict[str, Resource] = {
    "ultrasound": {"system": codes.SNOMED, "code": "16310003", "display": "Ultrasonography"},
    "ct": {"system": codes.SNOMED, "code": "77477000", "display": "Computed tomography"},
}


#: Systems of ``valueCoding`` answers (the contract reads answer codings by ``code`` alone).
ANSWER_SYSTEMS: dict[str, str] = {
    codes.VILLALTA_QUESTIONNAIRE: f"{codes.CANONICAL_BASE}/CodeSystem/villalta-answer",
    codes.CIVIQ20_QUESTIONNAIRE: f"{codes.CANONICAL_BASE}/CodeSystem/civiq20-answer",
}


def iso(day: dt.date) -> str:
    """A FHIR ``date``."""
    return day.isoformat()


def date_time(day: dt.date, hhmm: str = "09:30", offset: str = "+01:00") -> str:
    """A FHIR ``dateTime`` on the calendar ``day`` (the contract keeps only the date)."""
    return f"{day.isoformat()}T{hhmm}:00{offset}"


def meta(day: dt.date, version: int = 1) -> Resource:
    """``meta`` with ``versionId`` and a ``lastUpdated`` instant on the evening of ``day`` (UTC)."""
    return {"versionId": str(version), "lastUpdated": f"{day.isoformat()}T18:00:00Z"}


def coding(system: str, code: str, display: str | None = None) -> Resource:
    """A ``Coding`` (``display`` only for readers; never used for matching)."""
    c: Resource = {"system": system, "code": code}
    if display is not None:
        c["display"] = display
    return c


def concept(*codings: Resource, text: str | None = None) -> Resource:
    """A ``CodeableConcept`` of the given codings."""
    cc: Resource = {"coding": list(codings)}
    if text is not None:
        cc["text"] = text
    return cc


def ref(resource_type: str, resource_id: str) -> Resource:
    """A relative ``Reference`` ``<Type>/<id>``."""
    return {"reference": f"{resource_type}/{resource_id}"}


def patient(
    patient_id: str,
    gender: str,
    birth_date: dt.date,
    *,
    last_updated: dt.date,
    name: tuple[str, str] | None = None,
) -> Resource:
    """A ``Patient``: gender, birthDate and optionally a (synthetic) name ``(family, given)``."""
    p: Resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": meta(last_updated),
        "gender": gender,
        "birthDate": iso(birth_date),
    }
    if name is not None:
        p["name"] = [{"use": "official", "family": name[0], "given": [name[1]]}]
    return p


def body_sites(segments: Iterable[str], side: str) -> list[Resource]:
    """SNOMED CT ``bodySite`` concepts of stented segments (the side is only in the text)."""
    return [
        concept(coding(codes.SNOMED, SEGMENT_SNOMED[s], SEGMENT_DISPLAY[s]), text=f"{side} {SEGMENT_DISPLAY[s]}")
        for s in segments
    ]


def procedure(
    procedure_id: str,
    patient_id: str,
    day: dt.date,
    code: Sequence[Resource],
    *,
    status: str = "completed",
    sites: list[Resource] | None = None,
    outcome: str | None = None,
    complication: list[Resource] | None = None,
    reason: Literal["stenosis", "occlusion"] | None = None,
    reason_observation_id: str | None = None,
    period: bool = False,
    text: str | None = None,
    version: int = 1,
) -> Resource:
    """A ``Procedure`` on ``day`` (``performedDateTime``, or ``performedPeriod`` when ``period``).

    ``outcome``: a key of :data:`OUTCOME_CODINGS`; ``reason``: ``reasonCode`` ``pts#stenosis`` / ``pts#occlusion``;
    ``reason_observation_id``: ``reasonReference`` to that Observation.
    """
    p: Resource = {
        "resourceType": "Procedure",
        "id": procedure_id,
        "meta": meta(day, version),
        "status": status,
        "code": concept(*code, text=text) if text else concept(*code),
        "subject": ref("Patient", patient_id),
    }
    if period:
        p["performedPeriod"] = {"start": date_time(day, "08:40"), "end": date_time(day, "11:05")}
    else:
        p["performedDateTime"] = date_time(day, "10:15")
    if sites:
        p["bodySite"] = sites
    if outcome is not None:
        p["outcome"] = concept(OUTCOME_CODINGS[outcome])
    if complication:
        p["complication"] = complication
    if reason is not None:
        p["reasonCode"] = [concept(coding(codes.PTS_SYSTEM, reason))]
    if reason_observation_id is not None:
        p["reasonReference"] = [ref("Observation", reason_observation_id)]
    return p


def cpt(code: str) -> Resource:
    """A CPT coding (code only: AMA descriptors are not shipped)."""
    return coding(codes.CPT, code)


def icd10pcs(code: str) -> Resource:
    """An ICD-10-PCS coding."""
    return coding(codes.ICD10PCS, code)


def pts(code: str) -> Resource:
    """A coding of the project's CodeSystem ``{base}/CodeSystem/pts``."""
    return coding(codes.PTS_SYSTEM, code)


def patency_observation(
    observation_id: str,
    patient_id: str,
    day: dt.date,
    *,
    finding: Literal["patent", "stenosis", "occluded"] | None = None,
    percent_reduction: float | None = None,
    method: Literal["ultrasound", "ct"] | None = "ultrasound",
    status: str = "final",
    period: bool = False,
    version: int = 1,
) -> Resource:
    """A stent-patency ``Observation``: a coded ``finding`` or a ``valueQuantity`` % diameter reduction."""
    o: Resource = {
        "resourceType": "Observation",
        "id": observation_id,
        "meta": meta(day, version),
        "status": status,
        "category": [concept(coding("http://terminology.hl7.org/CodeSystem/observation-category", "imaging"))],
        "code": concept(pts("stent-patency"), text="Stent patency"),
        "subject": ref("Patient", patient_id),
    }
    if period:
        o["effectivePeriod"] = {"start": date_time(day, "14:00"), "end": date_time(day, "14:25")}
    else:
        o["effectiveDateTime"] = date_time(day, "14:00")
    if finding is not None:
        o["valueCodeableConcept"] = concept(pts(finding))
    else:
        assert percent_reduction is not None
        o["valueQuantity"] = {"value": percent_reduction, "unit": "%", "system": codes.UCUM, "code": "%"}
    if method is not None:
        o["method"] = concept(METHOD_CODINGS[method])
    return o


def _answer(value: int, encoding: AnswerEncoding, answer_system: str) -> Resource:
    if encoding == "coding":
        return {"valueCoding": {"system": answer_system, "code": str(value)}}
    return {"valueInteger": value}


def questionnaire_response(
    response_id: str,
    patient_id: str,
    day: dt.date,
    questionnaire: str,
    answers: Sequence[tuple[str, int | bool]],
    *,
    encoding: AnswerEncoding = "integer",
    groups: dict[str, Sequence[str]] | None = None,
    status: str = "completed",
    questionnaire_version: str | None = None,
    version: int = 1,
) -> Resource:
    """A ``QuestionnaireResponse`` with one answer per ``(linkId, value)`` (``bool`` → ``valueBoolean``).

    ``groups`` nests the items under group items (``{group linkId: [item linkIds]}``); items missing from
    ``answers`` are simply absent.
    """
    answer_system = ANSWER_SYSTEMS.get(questionnaire, f"{codes.CANONICAL_BASE}/CodeSystem/answer")
    items: dict[str, Resource] = {}
    for link_id, value in answers:
        answer = {"valueBoolean": value} if isinstance(value, bool) else _answer(value, encoding, answer_system)
        items[link_id] = {"linkId": link_id, "answer": [answer]}
    if groups:
        top: list[Resource] = []
        grouped: set[str] = set()
        for group_id, members in groups.items():
            children = [items[m] for m in members if m in items]
            grouped.update(members)
            if children:
                top.append({"linkId": group_id, "item": children})
        top.extend(item for link_id, item in items.items() if link_id not in grouped)
    else:
        top = list(items.values())
    canonical = questionnaire if questionnaire_version is None else f"{questionnaire}|{questionnaire_version}"
    return {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "meta": meta(day, version),
        "questionnaire": canonical,
        "status": status,
        "subject": ref("Patient", patient_id),
        "authored": date_time(day, "11:20"),
        "item": top,
    }


def instrument_response(
    instrument: Instrument,
    response_id: str,
    patient_id: str,
    day: dt.date,
    values: Sequence[tuple[str, int]],
    *,
    status: str = "completed",
) -> Resource:
    """A ``QuestionnaireResponse`` to an instrument's Questionnaire (any instrument, a plugin's included).

    ``values``: ``(linkId, score)`` of the answered items. Each answer is the ``answerOption`` coding that the
    instrument's answer values (by default the Questionnaire's ``itemWeight`` extensions) map to that score, else
    a ``valueInteger``.
    """
    by_score: dict[str, dict[int, tuple[str, str]]] = {}
    for link_id, mapping in instrument.answer_map().items():
        for (system, code), score in mapping.items():
            by_score.setdefault(link_id, {}).setdefault(score, (system, code))
    items: list[Resource] = []
    for link_id, value in values:
        coded = by_score.get(link_id, by_score.get("*", {})).get(value)
        if coded is None:
            answer: Resource = {"valueInteger": value}
        else:
            answer = {"valueCoding": {"system": coded[0], "code": coded[1]} if coded[0] else {"code": coded[1]}}
        items.append({"linkId": link_id, "answer": [answer]})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "meta": meta(day),
        "questionnaire": instrument.questionnaires[0],
        "status": status,
        "subject": ref("Patient", patient_id),
        "authored": date_time(day, "11:20"),
        "item": items,
    }


def _total(observation_id: str, patient_id: str, day: dt.date, code: Resource, value: int | float) -> Resource:
    """A score total as a ``survey`` ``Observation`` (``valueInteger``, or ``valueQuantity`` when fractional)."""
    return {
        "resourceType": "Observation",
        "id": observation_id,
        "meta": meta(day),
        "status": "final",
        "category": [concept(coding("http://terminology.hl7.org/CodeSystem/observation-category", "survey"))],
        "code": concept(code),
        "subject": ref("Patient", patient_id),
        "effectiveDateTime": date_time(day, "11:20"),
        **({"valueInteger": value} if isinstance(value, int) else {"valueQuantity": {"value": value}}),
    }


def total_observation(
    instrument: Instrument, observation_id: str, patient_id: str, day: dt.date, value: int | float
) -> Resource:
    """An instrument's total score as an ``Observation`` coded with its first total code."""
    return _total(observation_id, patient_id, day, coding(*instrument.total_codes[0]), value)


def score_observation(
    observation_id: str, patient_id: str, day: dt.date, score: Literal["villalta-total", "civiq20-total"], value: int
) -> Resource:
    """A score total as an ``Observation`` (``pts#villalta-total`` 0-33 or ``pts#civiq20-total`` raw 20-100)."""
    return _total(observation_id, patient_id, day, pts(score), value)


def adverse_event(
    event_id: str, patient_id: str, day: dt.date, procedure_id: str, *, serious: bool, text: str
) -> Resource:
    """An ``AdverseEvent`` of the index ``Procedure`` (``suspectEntity.instance``), serious or not."""
    return {
        "resourceType": "AdverseEvent",
        "id": event_id,
        "meta": meta(day),
        "actuality": "actual",
        "event": {"text": text},
        "subject": ref("Patient", patient_id),
        "date": date_time(day, "16:00"),
        "seriousness": concept(coding(codes.AE_SERIOUSNESS, "serious" if serious else "non-serious")),
        "suspectEntity": [{"instance": ref("Procedure", procedure_id)}],
    }


def spread_total(total: int, weights: Sequence[float], low: int, high: int) -> list[int]:
    """Distribute a questionnaire ``total`` over items in ``[low, high]``, roughly proportional to ``weights``.

    Deterministic (largest remainder, ties to the earlier item). Raises ``ValueError`` when the total is out of
    the reachable range ``[len(weights) * low, len(weights) * high]``.
    """
    n = len(weights)
    if not n * low <= total <= n * high:
        raise ValueError(f"total {total} not reachable with {n} items in [{low}, {high}]")
    extra = total - n * low
    span = high - low
    scale = sum(weights)
    ideal = [extra * w / scale for w in weights]
    values = [min(span, int(x)) for x in ideal]
    remaining = extra - sum(values)
    while remaining > 0:
        order = sorted(range(n), key=lambda k: (-(ideal[k] - values[k]), k))
        for k in order:
            if remaining == 0:
                break
            if values[k] < span:
                values[k] += 1
                remaining -= 1
    return [low + v for v in values]


def villalta_items(total: int, profile: int) -> list[int]:
    """Eleven Villalta items (0-3) summing to ``total``; ``profile`` (any int) varies which items weigh most."""
    base = [3.0, 1.2, 2.6, 1.0, 1.4, 2.8, 1.6, 2.4, 0.9, 1.8, 1.3]
    k = profile % 11
    weights = base[k:] + base[:k] if profile % 2 else base
    return spread_total(total, weights, 0, 3)


def civiq_items(total: int, profile: int) -> list[int]:
    """Twenty CIVIQ-20 items (1-5) summing to the raw ``total``; ``profile`` varies the spread."""
    base = [2.2, 1.6, 1.4, 2.0, 1.8, 1.2, 1.9, 1.0, 1.5, 0.8, 1.7, 1.3, 0.9, 1.1, 1.0, 1.6, 1.4, 1.2, 1.5, 1.3]
    k = (profile * 7) % 20
    weights = base[k:] + base[:k]
    return spread_total(total, weights, 1, 5)


VILLALTA_GROUPS: dict[str, Sequence[str]] = {
    "symptoms": codes.VILLALTA_ITEMS[:5],
    "clinical-signs": codes.VILLALTA_ITEMS[5:],
}
CIVIQ_GROUPS: dict[str, Sequence[str]] = dict(codes.CIVIQ20_DIMENSIONS)


def villalta_response(
    response_id: str,
    patient_id: str,
    day: dt.date,
    items: Sequence[int],
    ulcer: bool | None,
    **kwargs: Any,
) -> Resource:
    """A Villalta ``QuestionnaireResponse``: the 11 items in contract order, plus ``ulcer`` (``None``: absent)."""
    answers: list[tuple[str, int | bool]] = list(zip(codes.VILLALTA_ITEMS, items, strict=True))
    if ulcer is not None:
        answers.append((codes.VILLALTA_ULCER_ITEM, ulcer))
    groups = VILLALTA_GROUPS if kwargs.pop("nested", False) else None
    return questionnaire_response(
        response_id, patient_id, day, codes.VILLALTA_QUESTIONNAIRE, answers, groups=groups, **kwargs
    )


def civiq_response(
    response_id: str,
    patient_id: str,
    day: dt.date,
    items: Sequence[int],
    *,
    missing: Iterable[int] = (),
    **kwargs: Any,
) -> Resource:
    """A CIVIQ-20 ``QuestionnaireResponse`` (items q1..q20); ``missing``: 0-based item indexes left unanswered."""
    skip = set(missing)
    pairs = enumerate(zip(codes.CIVIQ20_ITEMS, items, strict=True))
    answers: list[tuple[str, int | bool]] = [(link_id, value) for k, (link_id, value) in pairs if k not in skip]
    groups = CIVIQ_GROUPS if kwargs.pop("nested", False) else None
    return questionnaire_response(
        response_id, patient_id, day, codes.CIVIQ20_QUESTIONNAIRE, answers, groups=groups, **kwargs
    )
