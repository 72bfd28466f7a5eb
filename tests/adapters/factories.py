"""Small factories of FHIR R4 resources (plain dicts) for the ingest tests.

Each builds the minimal valid resource of one contract encoding; keyword arguments change one thing at a time
(``None`` drops an element). ``extra`` entries are merged in last, so a test can add or override any element.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir_pts import codes

PTS = codes.PTS_SYSTEM


def cc(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A CodeableConcept of the given ``(system, code)`` codings (with a misleading display on purpose)."""
    return {"coding": [{"system": s, "code": c, "display": "ignored display"} for s, c in pairs]}


def _clean(resource: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    resource.update(extra)
    return {k: v for k, v in resource.items() if v is not None}


def meta(version_id: str | None = None, last_updated: str | None = None) -> dict[str, Any]:
    return {k: v for k, v in {"versionId": version_id, "lastUpdated": last_updated}.items() if v is not None}


def patient(pid: str = "pat1", gender: str | None = "female", birth_date: str | None = "1970-05-06", **extra: Any):
    return _clean({"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth_date}, extra)


def procedure(
    rid: str = "proc1",
    patient_id: str = "pat1",
    code: Iterable[tuple[str, str]] = ((codes.ICD10PCS, "067C3DZ"),),
    performed: str | None = "2020-01-15T09:30:00+01:00",
    period: bool = False,
    status: str | None = "completed",
    body_sites: Iterable[tuple[str, str]] | None = None,
    outcome: Iterable[tuple[str, str]] | None = None,
    complication: Iterable[tuple[str, str]] | None = None,
    reason_code: Iterable[tuple[str, str]] | None = None,
    reason_reference: Iterable[str] | None = None,
    subject: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Procedure; ``period=True`` writes the date as ``performedPeriod.start`` (as Synthea does)."""
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": rid,
        "status": status,
        "code": code if isinstance(code, str) else cc(*code),
        "subject": {"reference": subject if subject is not None else f"Patient/{patient_id}"},
    }
    if performed is not None:
        if period:
            resource["performedPeriod"] = {"start": performed, "end": performed}
        else:
            resource["performedDateTime"] = performed
    if body_sites is not None:
        resource["bodySite"] = [cc(pair) for pair in body_sites]
    if outcome is not None:
        resource["outcome"] = cc(*outcome)
    if complication is not None:
        resource["complication"] = [cc(pair) for pair in complication]
    if reason_code is not None:
        resource["reasonCode"] = [cc(pair) for pair in reason_code]
    if reason_reference is not None:
        resource["reasonReference"] = [{"reference": ref} for ref in reason_reference]
    return _clean(resource, extra)


def observation(
    rid: str = "obs1",
    patient_id: str = "pat1",
    code: tuple[str, str] = codes.STENT_PATENCY,
    effective: str | None = "2020-04-15",
    period: bool = False,
    status: str | None = "final",
    **extra: Any,
) -> dict[str, Any]:
    """An Observation with no value (add ``valueCodeableConcept`` / ``valueQuantity`` / ``valueInteger``)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "code": cc(code),
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if effective is not None:
        resource["effectivePeriod" if period else "effectiveDateTime"] = {"start": effective} if period else effective
    return _clean(resource, extra)


def patency(
    rid: str = "obs1", value: str | None = "patent", percent: float | None = None, method: str | None = None, **kw: Any
) -> dict[str, Any]:
    """A stent-patency Observation with a coded value, or a % diameter reduction when ``percent`` is given."""
    extra: dict[str, Any] = {}
    if percent is not None:
        extra["valueQuantity"] = {"value": percent, "unit": "%", "system": codes.UCUM, "code": "%"}
    elif value is not None:
        extra["valueCodeableConcept"] = cc((PTS, value))
    if method is not None:
        extra["method"] = cc((codes.SNOMED, method))
    extra.update(kw.pop("extra", {}))
    return observation(rid, code=codes.STENT_PATENCY, **kw, **extra)


def answer_item(link_id: str, value: Any, kind: str = "valueInteger") -> dict[str, Any]:
    """A QR item with one answer; ``kind='valueCoding'`` writes ``value`` as a coding's code."""
    if kind == "valueCoding":
        return {"linkId": link_id, "answer": [{"valueCoding": {"system": "urn:any", "code": str(value)}}]}
    return {"linkId": link_id, "answer": [{kind: value}]}


def questionnaire_response(
    rid: str = "qr1",
    patient_id: str = "pat1",
    questionnaire: str = codes.VILLALTA_QUESTIONNAIRE,
    items: list[dict[str, Any]] | None = None,
    authored: str | None = "2020-01-10T08:00:00Z",
    status: str | None = "completed",
    **extra: Any,
) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "QuestionnaireResponse",
            "id": rid,
            "questionnaire": questionnaire,
            "status": status,
            "subject": {"reference": f"Patient/{patient_id}"},
            "authored": authored,
            "item": items if items is not None else [],
        },
        extra,
    )


def villalta_items(scores: Mapping[str, int] | None = None, ulcer: bool | None = False, kind: str = "valueInteger"):
    """The 11 Villalta items (1 each unless ``scores`` says otherwise) and the ulcer item (omitted if None)."""
    values = {link_id: 1 for link_id in codes.VILLALTA_ITEMS} | dict(scores or {})
    items = [answer_item(link_id, value, kind) for link_id, value in values.items()]
    if ulcer is not None:
        items.append(answer_item(codes.VILLALTA_ULCER_ITEM, ulcer, "valueBoolean"))
    return items


def civiq_items(scores: Mapping[str, int] | None = None, kind: str = "valueInteger") -> list[dict[str, Any]]:
    """The 20 CIVIQ-20 items (2 each unless ``scores`` says otherwise)."""
    values = {link_id: 2 for link_id in codes.CIVIQ20_ITEMS} | dict(scores or {})
    return [answer_item(link_id, value, kind) for link_id, value in values.items()]


def adverse_event(
    rid: str = "ae1",
    patient_id: str = "pat1",
    seriousness: tuple[str, str] | None = codes.AE_SERIOUS,
    procedures: Iterable[str] = ("Procedure/proc1",),
    **extra: Any,
) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "AdverseEvent",
            "id": rid,
            "actuality": "actual",
            "subject": {"reference": f"Patient/{patient_id}"},
            "seriousness": cc(seriousness) if seriousness is not None else None,
            "suspectEntity": [{"instance": {"reference": ref}} for ref in procedures],
        },
        extra,
    )


def concept_map(source: str, target: str, elements: Iterable[tuple[str, str, str]], cid: str = "cm1") -> dict[str, Any]:
    """An R4 ConceptMap with one group; ``elements`` are ``(local code, target code, equivalence)``."""
    return {
        "resourceType": "ConceptMap",
        "id": cid,
        "status": "active",
        "group": [
            {
                "source": source,
                "target": target,
                "element": [
                    {"code": code, "target": [{"code": mapped, "equivalence": equivalence}]}
                    for code, mapped, equivalence in elements
                ],
            }
        ],
    }


def bundle(resources: Iterable[dict[str, Any]], bundle_type: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [{"fullUrl": f"urn:uuid:{r.get('id')}", "resource": r} for r in resources],
    }
