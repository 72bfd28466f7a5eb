"""A realistic random cohort of ``n`` patients, reproducible for a seed, streamed patient by patient.

Each patient draws from its own generator (``random.Random`` seeded with ``"<seed>:<patient number>"``), so a
patient's resources do not depend on the others and memory stays flat in ``n``. Proportions below are per
patient unless said otherwise (the constants of this module):

- ~90 % have an index stenting (CPT 37238/37239, ICD-10-PCS ``067?3DZ`` or ``pts#venous-stenting``, bodySites
  or ICD body parts; ~3 % with no recognisable segment); ~3 % technical failures, ~2 % with no outcome;
  ~2 % major complications (``Procedure.complication`` or a serious ``AdverseEvent``), some non-serious ones.
- Imaging follow-up on a duplex / CT schedule with stenoses (~60 % treated by angioplasty), occlusions (about
  half reopened by thrombolysis / thrombectomy, some attempts failing), coded or % reduction values.
- Villalta and CIVIQ-20 at baseline and ~3 months, as QuestionnaireResponses (``valueInteger`` or
  ``valueCoding``, flat or nested, versioned canonicals, 1-2 or >= 3 missing CIVIQ-20 items, missing ulcer) or
  as total Observations; some outside the windows, some not ``completed``.
- Records to be skipped: non-final Observations, ``entered-in-error`` Procedures, superseded versions (same id,
  lower ``meta.versionId``).
- Noise: on average ``noise_per_patient`` unrelated resources (vital signs and labs with LOINC codes,
  encounters, unrelated procedures, conditions), which dominate the line count as in a real export.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from fhir_pts import codes
from fhir_pts.instruments.model import Instrument
from fhir_pts.synth import resources as r

DEFAULT_NOISE_PER_PATIENT = 20.0
P_INDEX_STENTING = 0.90
P_TECHNICAL_FAILURE = 0.03
P_NO_OUTCOME = 0.02
P_MAJOR_COMPLICATION = 0.02
P_SCORE_AS_OBSERVATION = 0.15

FIRST_INDEX = dt.date(2012, 1, 1)
LAST_INDEX = dt.date(2022, 12, 31)
DATA_CUT = dt.date(2024, 6, 30)

FAMILY = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
          "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "Fournier", "Rossi", "Novak", "Keller",
          "Silva")  # fmt: skip
GIVEN = {
    "female": ("Anne", "Marie", "Claire", "Sophie", "Julie", "Elena", "Lucia", "Nadia", "Ines", "Maya"),
    "male": ("Paul", "Louis", "Marc", "Hugo", "Jean", "Karim", "Luca", "Tomas", "Ivan", "Noah"),
}

#: (LOINC code, display, UCUM unit, mean, SD, decimals, category) of unrelated Observations.
NOISE_OBSERVATIONS: tuple[tuple[str, str, str, float, float, int, str], ...] = (
    ("8867-4", "Heart rate", "/min", 74, 11, 0, "vital-signs"),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 128, 15, 0, "vital-signs"),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 79, 9, 0, "vital-signs"),
    ("29463-7", "Body weight", "kg", 78, 15, 1, "vital-signs"),
    ("8302-2", "Body height", "cm", 169, 9, 0, "vital-signs"),
    ("39156-5", "Body mass index", "kg/m2", 27, 4.5, 1, "vital-signs"),
    ("8310-5", "Body temperature", "Cel", 36.8, 0.4, 1, "vital-signs"),
    ("2708-6", "Oxygen saturation in Arterial blood", "%", 97, 1.5, 0, "vital-signs"),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.6, 1.5, 1, "laboratory"),
    ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 7.2, 2.0, 1, "laboratory"),
    ("777-3", "Platelets [#/volume] in Blood", "10*3/uL", 250, 60, 0, "laboratory"),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.9, 0.2, 2, "laboratory"),
    ("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 1.6, 0.7, 1, "laboratory"),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 98, 18, 0, "laboratory"),
    ("48065-7", "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma", "ng/mL{FEU}", 600, 300, 0, "laboratory"),
)
#: Unrelated procedures: (system, code, display).
NOISE_PROCEDURES = (
    (codes.CPT, "93970", "Duplex scan of extremity veins, bilateral"),
    (codes.CPT, "93971", "Duplex scan of extremity veins, unilateral"),
    (codes.CPT, "36415", "Venipuncture"),
    (codes.SNOMED, "73761001", "Colonoscopy"),
    (codes.SNOMED, "80146002", "Appendectomy"),
    (codes.SNOMED, "274474001", "Bone immobilization"),
)
#: Conditions: (ICD-10-CM code, display).
NOISE_CONDITIONS = (
    ("I87.002", "Postthrombotic syndrome without complications of left lower extremity"),
    ("I87.012", "Postthrombotic syndrome with ulcer of left lower extremity"),
    ("I82.512", "Chronic embolism and thrombosis of left femoral vein"),
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("Z95.820", "Peripheral vascular angioplasty status with implants and grafts"),
)
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
SEGMENT_ORDER = codes.SEGMENTS[:5]  # IVC .. femoral (deep femoral added separately, rarely)
REINTERVENTION_CODES = ("37248", "37249", "37187", "37188", "37212", "37214")


def random_cohort_resources(
    n: int,
    seed: int,
    *,
    noise_per_patient: float = DEFAULT_NOISE_PER_PATIENT,
    instruments: Sequence[Instrument] = (),
) -> Iterator[dict[str, Any]]:
    """Stream ``n`` random patients' resources (Patient first, then that patient's other resources).

    Reproducible: the same ``(n, seed, noise_per_patient)`` gives the same resources in the same order, and
    patient ``i`` is the same whatever ``n``. Ids are ``s<seed>-p<i>`` plus a suffix per resource.
    ``instruments``: further instruments (the plugins') whose Questionnaires are answered too, around the
    baseline and 3 months, from a random stream of their own (the contract's resources are unchanged).
    """
    for i in range(n):
        yield from _Patient(i, seed, noise_per_patient, tuple(instruments)).resources()


class _Patient:
    def __init__(self, i: int, seed: int, noise: float, instruments: tuple[Instrument, ...] = ()) -> None:
        self.rng = random.Random(f"fhir-pts:{seed}:{i}")
        self.pid = f"s{seed}-p{i:07d}"
        self.noise = noise
        self.n = 0
        self.instruments = instruments
        self.stream = f"fhir-pts:{seed}:{i}"

    def next_id(self, tag: str) -> str:
        self.n += 1
        return f"{self.pid}-{tag}{self.n}"

    # -- the patient --------------------------------------------------------------------------
    def resources(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        gender = "female" if rng.random() < 0.62 else ("male" if rng.random() < 0.99 else "unknown")
        age = min(90, max(18, round(rng.gauss(48, 16))))
        day0 = FIRST_INDEX + dt.timedelta(days=rng.randrange((LAST_INDEX - FIRST_INDEX).days))
        birth = day0 - dt.timedelta(days=age * 365 + rng.randrange(365))
        name = None
        if rng.random() < 0.8:
            given = GIVEN.get(gender, GIVEN["female"])
            name = (rng.choice(FAMILY), rng.choice(given))
        yield r.patient(self.pid, gender, birth, last_updated=DATA_CUT, name=name)
        if rng.random() < P_INDEX_STENTING:
            yield from self.index_and_follow_up(day0)
        elif rng.random() < 0.4:  # no stenting, but assessed (e.g. conservative management)
            yield from self.assessments(day0, rng.randint(5, 20), rng.randint(35, 80), improve=False)
        for instrument in self.instruments:
            yield from self.instrument_assessments(instrument, day0)
        yield from self.noise_resources(birth, day0)

    # -- a plugin's instrument -----------------------------------------------------------------
    def instrument_assessments(self, instrument: Instrument, day0: dt.date) -> Iterator[dict[str, Any]]:
        """Baseline (90 %) and 3-month (85 %) responses to ``instrument``'s Questionnaire, improving by about
        a third; 5 % of responses miss one item. Drawn from a stream of its own (the others are unchanged)."""
        rng = random.Random(f"{self.stream}:{instrument.id}")
        low, high = instrument.item_range
        better = -1 if instrument.improvement_notation == "decrease" else 1
        baseline = {item: rng.randint(low, high) for item in instrument.items}
        follow = {
            item: min(high, max(low, value + (better if rng.random() < 0.4 else 0)))
            for item, value in baseline.items()
        }
        plan: list[tuple[int, dict[str, int]]] = []
        if rng.random() < 0.9:
            plan.append((-rng.randint(0, 80), baseline))
        if rng.random() < 0.85:
            plan.append((min(150, max(60, round(rng.gauss(91, 12)))), follow))
        for k, (day, values) in enumerate(plan):
            answered = [(item, values[item]) for item in instrument.items]
            if rng.random() < 0.05:
                answered.pop(rng.randrange(len(answered)))
            when = day0 + dt.timedelta(days=day)
            yield r.instrument_response(instrument, f"{self.pid}-{instrument.id}{k}", self.pid, when, answered)

    # -- index procedure -----------------------------------------------------------------------
    def index_and_follow_up(self, day0: dt.date) -> Iterator[dict[str, Any]]:
        rng = self.rng
        side = "left" if rng.random() < 0.75 else "right"
        start = rng.choice((0, 1, 1, 1, 2))
        length = rng.choice((1, 2, 2, 2, 3, 3, 4))
        segments = list(SEGMENT_ORDER[start : start + length])
        if "common_femoral_vein" in segments and rng.random() < 0.1:
            segments.append("deep_femoral_vein")
        failed = rng.random() < P_TECHNICAL_FAILURE
        outcome_kind = None if rng.random() < P_NO_OUTCOME else ("failure" if failed else "success")
        complication, serious_event = None, False
        if rng.random() < P_MAJOR_COMPLICATION:
            if rng.random() < 0.5:
                complication = [r.concept(r.pts("major-complication"), text="major bleeding requiring transfusion")]
            else:
                serious_event = True
        elif rng.random() < 0.05:
            complication = [{"text": "minor groin haematoma"}]

        encounter_id = self.next_id("enc")
        yield {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": r.meta(day0 + dt.timedelta(days=2)),
            "status": "finished",
            "class": r.coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP", "inpatient encounter"),
            "subject": r.ref("Patient", self.pid),
            "period": {"start": r.date_time(day0, "07:30"), "end": r.date_time(day0 + dt.timedelta(days=2), "11:00")},
        }
        index_ids = []
        encodable = all(s in r.ICD10PCS_ENCODABLE for s in segments)
        u = rng.random()
        system = "snomed" if outcome_kind and rng.random() < 0.6 else "pts"
        outcome = f"{system}-{outcome_kind}" if outcome_kind else None
        if encodable and u < 0.25:
            for k, segment in enumerate(segments):
                pid = self.next_id("stent")
                index_ids.append(pid)
                part = r.ICD10PCS_BODY_PART[(segment, side)]
                yield r.procedure(
                    pid, self.pid, day0, [r.icd10pcs(f"067{part}3DZ")], outcome=outcome if k == 0 else None,
                    complication=complication if k == 0 else None,
                )  # fmt: skip
        elif u < 0.45 and len(segments) > 1:
            first = self.next_id("stent")
            index_ids.append(first)
            yield r.procedure(
                first, self.pid, day0, [r.cpt("37238")], sites=r.body_sites(segments[:1], side), outcome=outcome,
                complication=complication, period=rng.random() < 0.3,
            )  # fmt: skip
            second = self.next_id("stent")
            index_ids.append(second)
            yield r.procedure(second, self.pid, day0, [r.cpt("37239")], sites=r.body_sites(segments[1:], side))
        else:
            code = r.pts("venous-stenting") if u > 0.9 else r.cpt("37238")
            sites = None if rng.random() < 0.03 else r.body_sites(segments, side)  # ~3 %: segments unknown
            pid = self.next_id("stent")
            index_ids.append(pid)
            yield r.procedure(
                pid, self.pid, day0, [code], sites=sites, outcome=outcome, complication=complication,
                text="Iliofemoral venous stenting",
            )  # fmt: skip
        if serious_event:
            yield r.adverse_event(
                self.next_id("ae"), self.pid, day0 + dt.timedelta(days=1), index_ids[0], serious=True,
                text="retroperitoneal haematoma requiring transfusion",
            )  # fmt: skip
        elif rng.random() < 0.03:
            yield r.adverse_event(
                self.next_id("ae"), self.pid, day0, index_ids[0], serious=False, text="contrast reaction, no treatment"
            )
        if rng.random() < 0.01:  # an entered-in-error duplicate procedure (to be ignored)
            yield r.procedure(self.next_id("stent"), self.pid, day0, [r.cpt("37238")], status="entered-in-error")
        yield from self.follow_up(day0, side, failed)
        v0 = min(33, max(2, round(rng.gauss(14, 6))))
        c0 = min(100, max(24, round(rng.gauss(58, 17))))
        yield from self.assessments(day0, v0, c0, improve=not failed)

    # -- imaging follow-up and reinterventions -------------------------------------------------
    def follow_up(self, day0: dt.date, side: str, failed: bool) -> Iterator[dict[str, Any]]:
        rng = self.rng
        horizon = min(int(rng.expovariate(1 / 700)) + 20, (DATA_CUT - day0).days)
        visits = [
            d + rng.randint(-10, 10)
            for d in (1, 30, 91, 182, 365, 547, 730, 1095, 1460, 1825, 2190, 2555)
            if d <= horizon and rng.random() < 0.85
        ]
        state = "occluded" if failed else "patent"
        for day in visits:
            day = max(1, day)
            if state == "patent":
                u = rng.random()
                state = "stenosis" if u < 0.05 else ("occluded" if u < 0.08 else "patent")
            elif state == "stenosis" and rng.random() < 0.2:
                state = "occluded"
            obs = self.patency(day0, day, state)
            yield from obs
            if failed:
                continue
            if state == "stenosis" and rng.random() < 0.6:
                yield self.reintervention(day0, day + rng.randint(2, 20), "stenosis", obs[-1]["id"], side, fail=False)
                state = "patent"
            elif state == "occluded" and rng.random() < 0.6:
                fail = rng.random() < 0.15
                yield self.reintervention(day0, day + rng.randint(0, 3), "occlusion", obs[-1]["id"], side, fail=fail)
                if not fail:
                    state = "patent"

    def patency(self, day0: dt.date, day: int, state: str) -> list[dict[str, Any]]:
        rng = self.rng
        when = day0 + dt.timedelta(days=day)
        oid = self.next_id("pat")
        method = rng.choices(("ultrasound", "ct", None), (0.75, 0.2, 0.05))[0]
        kwargs: dict[str, Any] = {"method": method, "period": rng.random() < 0.1}
        if rng.random() < 0.3:
            value = {"patent": rng.randint(0, 45), "stenosis": rng.randint(51, 95), "occluded": 100}[state]
            kwargs["percent_reduction"] = float(value)
        else:
            kwargs["finding"] = state
        status = rng.choices(("final", "amended", "corrected", "preliminary", "cancelled"), (90, 4, 2, 3, 1))[0]
        if rng.random() < 0.02:  # superseded version first: same id, lower versionId
            return [
                r.patency_observation(oid, self.pid, when, status="preliminary", version=1, **kwargs),
                r.patency_observation(oid, self.pid, when, status="final", version=2, **kwargs),
            ]
        return [r.patency_observation(oid, self.pid, when, status=status, **kwargs)]

    def reintervention(
        self,
        day0: dt.date,
        day: int,
        reason: Literal["stenosis", "occlusion"],
        observation_id: str,
        side: str,
        *,
        fail: bool,
    ) -> dict[str, Any]:
        """A reintervention, its reason as ``reasonCode`` (60 %), ``reasonReference`` (25 %) or absent (15 %)."""
        rng = self.rng
        when = day0 + dt.timedelta(days=day)
        part = r.ICD10PCS_BODY_PART[("common_iliac_vein", side)]
        if reason == "stenosis":
            code = rng.choice((r.cpt("37248"), r.cpt("37249"), r.icd10pcs(f"067{part}3ZZ"), r.pts("reintervention")))
        else:
            code = rng.choice((r.cpt("37187"), r.cpt("37188"), r.cpt("37212"), r.cpt("37214"),
                               r.icd10pcs(f"06C{part}3ZZ")))  # fmt: skip
        u = rng.random()
        return r.procedure(
            self.next_id("reint"), self.pid, when, [code],
            reason=reason if u < 0.6 else None,
            reason_observation_id=observation_id if 0.6 <= u < 0.85 else None,
            outcome=("snomed-failure" if rng.random() < 0.7 else "pts-failure") if fail else None,
        )  # fmt: skip

    # -- questionnaires ------------------------------------------------------------------------
    def assessments(self, day0: dt.date, v0: int, c0: int, *, improve: bool) -> Iterator[dict[str, Any]]:
        rng = self.rng
        gain_v = max(-3, round(0.6 * v0 + rng.gauss(0, 3))) if improve else round(rng.gauss(0, 2))
        v3 = min(33, max(0, v0 - gain_v))
        gain_c = round(1.2 * (v0 - v3) + rng.gauss(5, 8)) if improve else round(rng.gauss(0, 5))
        c3 = min(100, max(20, c0 - gain_c))
        plan: list[tuple[int, int, int, bool]] = []
        u = rng.random()
        if u < 0.9:
            plan.append((-rng.randint(0, 80), v0, c0, v0 >= 15 and rng.random() < 0.15))
        elif u < 0.95:
            plan.append((-rng.randint(91, 200), v0, c0, False))  # outside the baseline window
        u = rng.random()
        if u < 0.85:
            plan.append((min(150, max(60, round(rng.gauss(91, 12)))), v3, c3, False))
        elif u < 0.9:
            plan.append((rng.randint(170, 240), v3, c3, False))  # outside the 3-month window
        if rng.random() < 0.2:
            plan.append((rng.randint(330, 400), max(0, v3 - 1), max(20, c3 - 2), False))  # 12 months
        as_observation = rng.random() < P_SCORE_AS_OBSERVATION
        encoding: r.AnswerEncoding = "coding" if rng.random() < 0.15 else "integer"
        nested = rng.random() < 0.2
        version = "1.0" if rng.random() < 0.1 else None
        for day, villalta, civiq, ulcer in plan:
            when = day0 + dt.timedelta(days=day)
            if as_observation:
                yield r.score_observation(self.next_id("vt"), self.pid, when, "villalta-total", villalta)
                yield r.score_observation(self.next_id("ct"), self.pid, when, "civiq20-total", civiq)
                continue
            status = "completed" if rng.random() < 0.97 else rng.choice(("in-progress", "amended", "stopped"))
            yield r.villalta_response(
                self.next_id("vq"), self.pid, when, r.villalta_items(villalta, rng.randrange(1000)),
                None if rng.random() < 0.05 else ulcer, encoding=encoding, nested=nested, status=status,
                questionnaire_version=version,
            )  # fmt: skip
            u = rng.random()
            missing = (
                rng.sample(range(20), rng.randint(1, 2)) if u < 0.08 else rng.sample(range(20), 3) if u < 0.1 else ()
            )
            yield r.civiq_response(
                self.next_id("cq"), self.pid, when, r.civiq_items(civiq, rng.randrange(1000)), missing=missing,
                encoding=encoding, nested=nested, questionnaire_version=version,
            )  # fmt: skip

    # -- noise ---------------------------------------------------------------------------------
    def noise_resources(self, birth: dt.date, day0: dt.date) -> Iterator[dict[str, Any]]:
        rng = self.rng
        count = max(0, round(rng.gauss(self.noise, math.sqrt(self.noise)))) if self.noise > 0 else 0
        first = max(birth + dt.timedelta(days=18 * 365), day0 - dt.timedelta(days=1500))
        span = max(1, (min(DATA_CUT, day0 + dt.timedelta(days=1500)) - first).days)
        encounter: str | None = None
        for _ in range(count):
            when = first + dt.timedelta(days=rng.randrange(span))
            u = rng.random()
            if u < 0.7:
                code, display, unit, mean, sd, decimals, category = rng.choice(NOISE_OBSERVATIONS)
                value = round(max(0.1, rng.gauss(mean, sd)), decimals)
                o: dict[str, Any] = {
                    "resourceType": "Observation",
                    "id": self.next_id("obs"),
                    "meta": r.meta(when),
                    "status": "final",
                    "category": [
                        r.concept(r.coding("http://terminology.hl7.org/CodeSystem/observation-category", category))
                    ],
                    "code": r.concept(r.coding(LOINC, code, display), text=display),
                    "subject": r.ref("Patient", self.pid),
                    "effectiveDateTime": r.date_time(when, "08:15"),
                    "valueQuantity": {"value": value, "unit": unit, "system": codes.UCUM, "code": unit},
                }
                if encounter is not None:
                    o["encounter"] = r.ref("Encounter", encounter)
                yield o
            elif u < 0.85:
                encounter = self.next_id("enc")
                yield {
                    "resourceType": "Encounter",
                    "id": encounter,
                    "meta": r.meta(when),
                    "status": "finished",
                    "class": r.coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
                    "subject": r.ref("Patient", self.pid),
                    "period": {"start": r.date_time(when, "08:00"), "end": r.date_time(when, "08:40")},
                }
            elif u < 0.95:
                system, code, display = rng.choice(NOISE_PROCEDURES)
                yield r.procedure(self.next_id("proc"), self.pid, when, [r.coding(system, code, display)])
            else:
                code, display = rng.choice(NOISE_CONDITIONS)
                yield {
                    "resourceType": "Condition",
                    "id": self.next_id("cond"),
                    "meta": r.meta(when),
                    "clinicalStatus": r.concept(
                        r.coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active")
                    ),
                    "code": r.concept(r.coding(ICD10CM, code, display)),
                    "subject": r.ref("Patient", self.pid),
                    "onsetDateTime": r.date_time(when, "09:00"),
                }
