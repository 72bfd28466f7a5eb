"""A small synthetic hospital for the server tests: a stenting cohort plus resources that must NOT be fetched.

Stable ids (loaded with PUT in one transaction) so a test can compare what was fetched, by ``(type, id)``,
with :func:`expected_keys`, which applies the selection rules independently of the client code.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

from fhir_pts import codes

LOINC = "http://loinc.org"
Key = tuple[str, str]


def _ref(rtype: str, rid: str) -> dict[str, str]:
    return {"reference": f"{rtype}/{rid}"}


def patient(pid: str, gender: str, birth: date) -> dict:
    """A Patient."""
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth.isoformat()}


def procedure(rid: str, pid: str, system: str, code: str, day: date, status: str = "completed") -> dict:
    """A Procedure coded (system, code) on a day."""
    return {
        "resourceType": "Procedure", "id": rid, "status": status, "subject": _ref("Patient", pid),
        "code": {"coding": [{"system": system, "code": code}]}, "performedDateTime": day.isoformat(),
        "outcome": {"coding": [{"system": codes.SNOMED, "code": "385669000"}]},
    }


def patency(rid: str, pid: str, day: date, value: str) -> dict:
    """A stent-patency Observation."""
    system, code = codes.STENT_PATENCY
    return {
        "resourceType": "Observation", "id": rid, "status": "final", "subject": _ref("Patient", pid),
        "code": {"coding": [{"system": system, "code": code}]}, "effectiveDateTime": day.isoformat(),
        "valueCodeableConcept": {"coding": [{"system": codes.PTS_SYSTEM, "code": value}]},
    }


def heart_rate(rid: str, pid: str, day: date) -> dict:
    """An irrelevant Observation (LOINC heart rate)."""
    return {
        "resourceType": "Observation", "id": rid, "status": "final", "subject": _ref("Patient", pid),
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "effectiveDateTime": day.isoformat(),
        "valueQuantity": {"value": 72, "unit": "/min", "system": codes.UCUM, "code": "/min"},
    }


def villalta(rid: str, pid: str, day: date, rng: random.Random) -> dict:
    """A completed Villalta QuestionnaireResponse."""
    items = [{"linkId": i, "answer": [{"valueInteger": rng.randint(0, 3)}]} for i in codes.VILLALTA_ITEMS]
    items.append({"linkId": codes.VILLALTA_ULCER_ITEM, "answer": [{"valueBoolean": False}]})
    return {
        "resourceType": "QuestionnaireResponse", "id": rid, "status": "completed",
        "questionnaire": codes.VILLALTA_QUESTIONNAIRE, "subject": _ref("Patient", pid),
        "authored": day.isoformat(), "item": items,
    }


def civiq(rid: str, pid: str, day: date, rng: random.Random) -> dict:
    """A completed CIVIQ-20 QuestionnaireResponse."""
    items = [{"linkId": i, "answer": [{"valueInteger": rng.randint(1, 5)}]} for i in codes.CIVIQ20_ITEMS]
    return {
        "resourceType": "QuestionnaireResponse", "id": rid, "status": "completed",
        "questionnaire": f"{codes.CIVIQ20_QUESTIONNAIRE}|1.0", "subject": _ref("Patient", pid),
        "authored": day.isoformat(), "item": items,
    }


def adverse_event(rid: str, pid: str, proc_id: str, day: date) -> dict:
    """A serious AdverseEvent suspecting the index Procedure."""
    system, code = codes.AE_SERIOUS
    return {
        "resourceType": "AdverseEvent", "id": rid, "actuality": "actual", "subject": _ref("Patient", pid),
        "date": day.isoformat(), "seriousness": {"coding": [{"system": system, "code": code}]},
        "suspectEntity": [{"instance": _ref("Procedure", proc_id)}],
    }


def condition(rid: str, pid: str) -> dict:
    """An irrelevant resource type for a cohort patient."""
    return {"resourceType": "Condition", "id": rid, "subject": _ref("Patient", pid),
            "code": {"text": "post-thrombotic syndrome"}}


INDEX_CODES = [
    (codes.CPT, "37238"),
    (codes.CPT, "37239"),
    (codes.ICD10PCS, "067C3DZ"),
    (codes.PTS_SYSTEM, "venous-stenting"),
]


def cohort_resources(n_patients: int = 12, n_others: int = 4, seed: int = 7, prefix: str = "t") -> list[dict]:
    """A cohort of ``n_patients`` stented patients and ``n_others`` unrelated patients, as resources.

    Each stented patient has an index Procedure (codes cycling over CPT/ICD-10-PCS/pts), patency findings,
    Villalta and CIVIQ-20 responses, an unrelated heart-rate Observation and Condition; some have a
    reintervention and a serious AdverseEvent. The others have a non-stenting Procedure and observations
    of every kind (which must not be fetched: they are not in the cohort).
    """
    rng = random.Random(seed)
    out: list[dict] = []
    start = date(2021, 1, 4)
    for i in range(n_patients):
        pid = f"{prefix}p{i}"
        day0 = start + timedelta(days=7 * i)
        out.append(patient(pid, "female" if i % 2 else "male", date(1970 + i % 30, 1 + i % 12, 1 + i % 27)))
        system, code = INDEX_CODES[i % len(INDEX_CODES)]
        out.append(procedure(f"{pid}-idx", pid, system, code, day0))
        out.append(villalta(f"{pid}-v0", pid, day0 - timedelta(days=10), rng))
        out.append(villalta(f"{pid}-v3", pid, day0 + timedelta(days=92), rng))
        out.append(civiq(f"{pid}-c0", pid, day0 - timedelta(days=10), rng))
        out.append(civiq(f"{pid}-c3", pid, day0 + timedelta(days=90), rng))
        for k, months in enumerate((3, 6, 12)):
            value = "occluded" if (i % 5 == 0 and months == 12) else "patent"
            out.append(patency(f"{pid}-pat{k}", pid, day0 + timedelta(days=int(30.4375 * months)), value))
        out.append(heart_rate(f"{pid}-hr", pid, day0))
        out.append(condition(f"{pid}-cond", pid))
        if i % 4 == 1:
            out.append(procedure(f"{pid}-reint", pid, codes.CPT, "37248", day0 + timedelta(days=200)))
        if i % 6 == 2:
            out.append(adverse_event(f"{pid}-ae", pid, f"{pid}-idx", day0 + timedelta(days=1)))
    for j in range(n_others):
        pid = f"{prefix}o{j}"
        day = start + timedelta(days=5 * j)
        out.append(patient(pid, "male", date(1980, 1, 1)))
        out.append(procedure(f"{pid}-appx", pid, codes.CPT, "44950", day))  # appendectomy: not stenting
        out.append(patency(f"{pid}-pat", pid, day, "patent"))
        out.append(villalta(f"{pid}-v", pid, day, rng))
        out.append(heart_rate(f"{pid}-hr", pid, day))
    return out


def transaction(resources: Iterable[dict]) -> dict:
    """A transaction Bundle that PUTs every resource at its id."""
    return {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def _subject(resource: dict) -> str | None:
    ref = (resource.get("subject") or {}).get("reference", "")
    return ref.split("/", 1)[1] if ref.startswith("Patient/") else None


def _codings(resource: dict) -> set[tuple[str, str]]:
    return {(c.get("system"), c.get("code")) for c in (resource.get("code") or {}).get("coding", [])}


FETCHED_TYPES = {"Patient", "Procedure", "Observation", "QuestionnaireResponse", "AdverseEvent"}
OBSERVATION_CODES = {codes.STENT_PATENCY, codes.VILLALTA_TOTAL, codes.CIVIQ20_TOTAL}


def expected_keys(resources: Iterable[dict]) -> set[Key]:
    """What a cohort fetch must return: cohort Patients and their Procedures, contract Observations,
    QuestionnaireResponses and AdverseEvents (independent re-statement of the selection rules)."""
    resources = list(resources)
    cohort = {
        _subject(r) for r in resources
        if r["resourceType"] == "Procedure" and _codings(r) & codes.VENOUS_STENTING
    }
    out: set[Key] = set()
    for r in resources:
        rtype = r["resourceType"]
        owner = r["id"] if rtype == "Patient" else _subject(r)
        if owner not in cohort or rtype not in FETCHED_TYPES:
            continue
        if rtype != "Observation" or _codings(r) & OBSERVATION_CODES:
            out.add((rtype, r["id"]))
    return out


def read_keys(paths: list[Path]) -> set[Key]:
    """(type, id) of every resource in the NDJSON files a fetch wrote (to compare with :func:`expected_keys`),
    checking each line is in the file of its type and nothing is written twice."""
    keys: list[tuple[str, str]] = []
    for path in paths:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            assert path.name == f"{r['resourceType']}.ndjson"
            keys.append((r["resourceType"], r["id"]))
    assert len(keys) == len(set(keys)), "duplicates written"
    return set(keys)
