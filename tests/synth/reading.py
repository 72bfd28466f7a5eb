"""A minimal, independent reading of synthetic resources by the contract's rules (tests only).

Deliberately written apart from the package's adapters/cohort code, so the paper cohort is checked against the
contract itself and not against the code it feeds. Handles only the encodings the synthesiser writes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

PTS = "https://fhir-pts.org/fhir/CodeSystem/pts"
CPT = "http://www.ama-assn.org/go/cpt"
PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
SCT = "http://snomed.info/sct"
STENT_PCS = {"06703DZ", "067C3DZ", "067D3DZ", "067F3DZ", "067G3DZ", "067M3DZ", "067N3DZ"}
SITE = {"64131007": "IVC", "46027005": "CIV", "63507001": "EIV", "397363009": "CFV", "397364003": "FV",
        "23438002": "DFV"}  # fmt: skip
PCS_PART = {"0": "IVC", "C": "CIV", "D": "CIV", "F": "EIV", "G": "EIV", "M": "FV", "N": "FV"}
FAIL = {(SCT, "385671000"), (SCT, "385670004"), (PTS, "technical-failure")}
SUCCESS = {(SCT, "385669000"), (PTS, "technical-success")}
VILLALTA_ITEMS = ["pain", "cramps", "heaviness", "paresthesia", "pruritus", "pretibial-edema", "skin-induration",
                  "hyperpigmentation", "redness", "venous-ectasia", "calf-compression-pain"]  # fmt: skip


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def _codings(cc: dict[str, Any] | None) -> set[tuple[str, str]]:
    return {(c.get("system", ""), c.get("code", "")) for c in (cc or {}).get("coding", [])}


def _is_stenting(codes: set[tuple[str, str]]) -> bool:
    return any(
        (s == CPT and c in {"37238", "37239"}) or (s == PCS and c in STENT_PCS) or (s, c) == (PTS, "venous-stenting")
        for s, c in codes
    )


def _is_reintervention(codes: set[tuple[str, str]]) -> bool:
    return _is_stenting(codes) or any(
        (s == CPT and c in {"37248", "37249", "37187", "37188", "37212", "37214"})
        or (s == PCS and len(c) == 7 and c[:3] in {"067", "06C"} and c[4:] == "3ZZ")
        or (s, c) == (PTS, "reintervention")
        for s, c in codes
    )


@dataclass
class PatientRecord:
    gender: str = ""
    birth: dt.date | None = None
    procedures: list[dict[str, Any]] = field(default_factory=list)
    findings: list[tuple[dt.date, str, str]] = field(default_factory=list)  # (day, status, observation id)
    assessments: dict[str, list[tuple[dt.date, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))


def _flatten(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        for answer in item.get("answer", []):
            if "valueInteger" in answer:
                out[item["linkId"]] = answer["valueInteger"]
            elif "valueCoding" in answer:
                out[item["linkId"]] = int(answer["valueCoding"]["code"])
            elif "valueBoolean" in answer:
                out[item["linkId"]] = answer["valueBoolean"]
        out.update(_flatten(item.get("item", [])))
    return out


def read(resources: Iterable[dict[str, Any]]) -> dict[str, PatientRecord]:
    patients: dict[str, PatientRecord] = defaultdict(PatientRecord)
    for res in resources:
        kind = res["resourceType"]
        if kind == "Patient":
            patients[res["id"]].gender = res["gender"]
            patients[res["id"]].birth = dt.date.fromisoformat(res["birthDate"])
            continue
        subject = res.get("subject", {}).get("reference", "")
        if not subject.startswith("Patient/"):
            continue
        rec = patients[subject.removeprefix("Patient/")]
        if kind == "Procedure" and res["status"] == "completed":
            rec.procedures.append(res)
        elif kind == "Observation" and res["status"] in {"final", "amended", "corrected"}:
            if (PTS, "stent-patency") in _codings(res["code"]):
                when = res.get("effectiveDateTime") or res["effectivePeriod"]["start"]
                if "valueCodeableConcept" in res:
                    status = next(c for s, c in _codings(res["valueCodeableConcept"]) if s == PTS)
                else:
                    v = res["valueQuantity"]["value"]
                    status = "occluded" if v == 100 else "stenosis" if v > 50 else "patent"
                rec.findings.append((_day(when), status, res["id"]))
        elif kind == "QuestionnaireResponse" and res["status"] in {"completed", "amended"}:
            name = res["questionnaire"].split("|")[0].rsplit("/", 1)[-1]
            rec.assessments[name].append((_day(res["authored"]), _flatten(res.get("item", []))))
    return dict(patients)


@dataclass
class Derived:
    gender: str
    age: int
    segments: int
    technical_success: bool
    follow_up_days: int
    primary_lost: bool
    assisted_lost: bool
    secondary_lost: bool
    villalta: tuple[int, int] | None
    civiq: tuple[int, int] | None


def _pick(
    assessments: list[tuple[dt.date, dict[str, Any]]], day0: dt.date, score: Callable[[dict[str, Any]], int | None]
) -> tuple[int, int] | None:
    scored = [((d - day0).days, score(a)) for d, a in assessments]
    scored = [(d, s) for d, s in scored if s is not None]
    base = [x for x in scored if -90 <= x[0] <= 0]
    follow = [x for x in scored if 60 <= x[0] <= 150]
    if not base or not follow:
        return None
    b = max(base, key=lambda x: x[0])[1]
    f = min(follow, key=lambda x: (abs(x[0] - 91), x[0]))[1]
    return b, f


def derive(rec: PatientRecord) -> Derived | None:
    stenting = [p for p in rec.procedures if _is_stenting(_codings(p["code"]))]
    if not stenting:
        return None

    def pday(p: dict[str, Any]) -> dt.date:
        return _day(p.get("performedDateTime") or p["performedPeriod"]["start"])

    day0 = min(pday(p) for p in stenting)
    index = [p for p in stenting if pday(p) == day0]
    sites = {SITE[c] for p in index for cc in p.get("bodySite", []) for s, c in _codings(cc) if s == SCT and c in SITE}
    if not sites:
        sites = {PCS_PART[c[3]] for p in index for s, c in _codings(p["code"]) if s == PCS and c in STENT_PCS}
    outcomes = {x for p in index for x in _codings(p.get("outcome"))}
    failed = bool(outcomes & FAIL)
    assert failed or outcomes & SUCCESS
    b = rec.birth
    assert b is not None
    age = day0.year - b.year - ((day0.month, day0.day) < (b.month, b.day))

    findings = sorted((d, s, i) for d, s, i in rec.findings if d > day0)
    by_id = {i: s for _, s, i in findings}
    reint = []
    for p in rec.procedures:
        if pday(p) > day0 and _is_reintervention(_codings(p["code"])):
            reasons = {c for s, c in (x for cc in p.get("reasonCode", []) for x in _codings(cc)) if s == PTS}
            if reasons:
                reason = "occlusion" if "occlusion" in reasons else "stenosis"
            elif p.get("reasonReference"):
                ref_status = by_id[p["reasonReference"][0]["reference"].split("/")[1]]
                reason = "occlusion" if ref_status == "occluded" else "stenosis"
            else:
                prior = [s for d, s, _ in findings if d <= pday(p)]
                reason = "occlusion" if prior and prior[-1] == "occluded" else "stenosis"
            reint.append((pday(p), reason, bool(_codings(p.get("outcome")) & FAIL)))
    follow_up = (findings[-1][0] - day0).days if findings else 0
    if failed:
        primary = assisted = secondary = True
    else:
        primary = any(s != "patent" for _, s, _ in findings) or bool(reint)
        occlusions = [d for d, s, _ in findings if s == "occluded"] + [d for d, r, _ in reint if r == "occlusion"]
        assisted = bool(occlusions)
        secondary = any(not any(d >= o and not fail for d, _, fail in reint) for o in occlusions)

    def villalta(a: dict[str, Any]) -> int | None:
        return sum(a[i] for i in VILLALTA_ITEMS) if all(i in a for i in VILLALTA_ITEMS) else None

    def civiq(a: dict[str, Any]) -> int | None:
        keys = [f"q{i}" for i in range(1, 21)]
        return sum(a[k] for k in keys) if all(k in a for k in keys) else None

    return Derived(
        rec.gender, age, len(sites), not failed, follow_up, primary, assisted, secondary,
        _pick(rec.assessments["villalta"], day0, villalta), _pick(rec.assessments["civiq-20"], day0, civiq),
    )  # fmt: skip
