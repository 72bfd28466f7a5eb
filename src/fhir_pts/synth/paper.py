"""The paper cohort as FHIR resources: :data:`~fhir_pts.synth.paper_table.PAPER_PATIENTS`, row by row.

Fully deterministic: every date, id, item answer and event history is a pure function of the table row and its
position. Day numbers are days from the patient's index date (day 0). The event histories (``patency`` column):

- ``patent``: every patency finding after day 0 is patent (coded, or a % diameter reduction <= 50).
- ``stenosis``: an in-stent stenosis (> 50 %) part-way through follow-up; treated by angioplasty (CPT 37248,
  with 37249 for a second vein, or ICD-10-PCS ``067?3ZZ``) or left under surveillance; never occluded.
  Primary patency lost, primary-assisted kept.
- ``occlusion-reopened``: an occlusion (a finding, a 100 % reduction, or only a reintervention whose reason is
  occlusion) reopened by thrombolysis / thrombectomy (CPT 37212 / 37187, ICD-10-PCS ``06C?3ZZ``), sometimes after
  an earlier treated stenosis. Secondary patency kept.
- ``occlusion-lost``: an occlusion never reopened (no attempt, or a thrombectomy / thrombolysis whose outcome
  is a failure). All three patencies lost.
- ``technical-failure``: the index procedure failed; one CT at 3 months shows the vein still occluded.

The last patency finding is always on ``follow_up_days``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Literal

from fhir_pts.synth import resources as r
from fhir_pts.synth.paper_table import PAPER_PATIENTS, PaperPatient

#: Scheduled imaging visits (days after the index procedure).
IMAGING_SCHEDULE = (30, 91, 182, 365, 547, 730, 1095, 1460, 1825)
#: End of data collection (the latest ``meta.lastUpdated`` of a Patient).
DATA_CUT = dt.date(2019, 12, 31)


def paper_cohort_resources() -> Iterator[r.Resource]:
    """Stream the paper cohort's resources, patient by patient (Patient first, then its other resources)."""
    ordinals: dict[str, int] = {}
    for k, row in enumerate(PAPER_PATIENTS):
        ordinal = ordinals.get(row.patency, 0)
        ordinals[row.patency] = ordinal + 1
        yield from _patient_resources(k, row, ordinal)


def _patient_resources(k: int, row: PaperPatient, ordinal: int) -> Iterator[r.Resource]:
    pid = row.patient_id
    day0 = dt.date.fromisoformat(row.index_date)

    def at(day: int) -> dt.date:
        return day0 + dt.timedelta(days=day)

    yield r.patient(pid, row.gender, dt.date.fromisoformat(row.birth_date), last_updated=DATA_CUT)
    index_ids = list(_index_procedures(k, row, day0))
    yield from (p for _, p in index_ids)
    first_index_id = index_ids[0][0]
    if k % 10 == 7:
        yield r.adverse_event(
            f"{pid}-ae-1", pid, day0, first_index_id, serious=False, text="puncture-site haematoma, compression only"
        )
    if k % 5 == 0:  # completion imaging on day 0: not follow-up (contract §1)
        yield r.patency_observation(f"{pid}-pat-d0", pid, day0, finding="patent", method="ultrasound")
    yield from _patency_history(k, row, ordinal, at)
    yield from _assessments(k, row, at)


def _index_procedures(k: int, row: PaperPatient, day0: dt.date) -> Iterator[tuple[str, r.Resource]]:
    pid = row.patient_id
    segments = row.segment_names()
    failed = row.patency == "technical-failure"
    complication = [{"text": "groin haematoma, no treatment needed"}] if k % 10 == 3 else None
    if row.encoding == "cpt-bodysite":
        outcome = "snomed-failure" if failed else "snomed-success"
        yield f"{pid}-stent-1", r.procedure(
            f"{pid}-stent-1", pid, day0, [r.cpt("37238")], sites=r.body_sites(segments, row.side),
            outcome=outcome, complication=complication, text="Venous recanalisation and stenting",
        )  # fmt: skip
    elif row.encoding == "cpt-pair":
        outcome = "snomed-failure" if failed else "snomed-success"
        yield f"{pid}-stent-1", r.procedure(
            f"{pid}-stent-1", pid, day0, [r.cpt("37238")], sites=r.body_sites(segments[:1], row.side),
            outcome=outcome, complication=complication, period=True,
        )  # fmt: skip
        if len(segments) > 1:
            yield f"{pid}-stent-2", r.procedure(
                f"{pid}-stent-2", pid, day0, [r.cpt("37239")], sites=r.body_sites(segments[1:], row.side)
            )
    elif row.encoding == "icd10pcs":
        outcome = "pts-failure" if failed else "pts-success"
        for n, segment in enumerate(segments, start=1):
            body_part = r.ICD10PCS_BODY_PART[(segment, row.side)]
            yield f"{pid}-stent-{n}", r.procedure(
                f"{pid}-stent-{n}", pid, day0, [r.icd10pcs(f"067{body_part}3DZ")], outcome=outcome,
                complication=complication if n == 1 else None,
            )  # fmt: skip
    else:  # pts-bodysite
        outcome = "pts-failure" if failed else "pts-success"
        yield f"{pid}-stent-1", r.procedure(
            f"{pid}-stent-1", pid, day0, [r.pts("venous-stenting")], sites=r.body_sites(segments, row.side),
            outcome=outcome, complication=complication,
        )  # fmt: skip


def _visits(follow_up: int) -> list[int]:
    """Imaging days: the scheduled visits at least 30 days before the last one, then the last one."""
    return [d for d in IMAGING_SCHEDULE if d <= follow_up - 30] + [follow_up]


def _method(k: int, day: int, last: bool) -> Literal["ultrasound", "ct"]:
    """CT at 3 months, yearly for every other patient and for some last visits; duplex otherwise."""
    if day == 91 or (day % 365 == 0 and k % 2 == 1) or (last and k % 3 == 0):
        return "ct"
    return "ultrasound"


def _patency_history(k: int, row: PaperPatient, ordinal: int, at: Callable[[int], dt.date]) -> Iterator[r.Resource]:
    pid = row.patient_id
    visits = _visits(row.follow_up_days)
    side = row.side
    civ = r.ICD10PCS_BODY_PART[("common_iliac_vein", side)]

    def finding(day: int, status: str, *, percent: float | None = None, n: int = 0) -> r.Resource:
        last = day == visits[-1]
        kwargs = {"percent_reduction": percent} if percent is not None else {"finding": status}
        return r.patency_observation(
            f"{pid}-pat-{day}{'-' + str(n) if n else ''}", pid, at(day), method=_method(k, day, last), **kwargs
        )

    def patent(day: int) -> r.Resource:
        if k % 4 == 1:
            return finding(day, "patent", percent=float(10 + (day * 7 + k) % 30))
        return finding(day, "patent")

    if row.patency == "technical-failure":
        yield r.patency_observation(f"{pid}-pat-{visits[-1]}", pid, at(visits[-1]), finding="occluded", method="ct")
        return
    if row.patency == "patent":
        yield from (patent(d) for d in visits)
        return

    inner = visits[:-1]
    event = min(inner, key=lambda d: (abs(d - 0.45 * row.follow_up_days), d))
    early = min(inner, key=lambda d: (abs(d - 0.25 * row.follow_up_days), d))
    if early == event:
        early = inner[0] if inner[0] != event else event
    before = [d for d in visits if d < event]
    after = [d for d in visits if d > event]
    two_events = row.patency in ("occlusion-reopened", "occlusion-lost") and ordinal == 2 and early < event

    if two_events:  # treated stenosis first, occlusion later
        yield from (patent(d) for d in before if d < early)
        yield finding(early, "stenosis")
        yield r.procedure(f"{pid}-pta-{early}", pid, at(early + 5), [r.cpt("37248")], reason="stenosis")
        yield from (patent(d) for d in before if d > early)
    else:
        yield from (patent(d) for d in before)

    if row.patency == "stenosis":
        if ordinal == 0:
            yield finding(event, "stenosis")
            yield r.procedure(f"{pid}-pta-{event}", pid, at(event + 6), [r.cpt("37248")], reason="stenosis")
            yield from (patent(d) for d in after)
        elif ordinal == 1:
            yield finding(event, "stenosis", percent=65.0)
            yield r.procedure(
                f"{pid}-pta-{event}", pid, at(event + 10), [r.icd10pcs(f"067{civ}3ZZ")],
                reason_observation_id=f"{pid}-pat-{event}",
            )  # fmt: skip
            yield from (patent(d) for d in after)
        elif ordinal == 2:  # surveillance, no reintervention
            yield finding(event, "stenosis", percent=58.0)
            yield from (finding(d, "stenosis", percent=55.0) for d in after)
        else:
            yield finding(event, "stenosis")
            yield r.procedure(f"{pid}-pta-{event}-1", pid, at(event + 3), [r.cpt("37248")], reason="stenosis")
            yield r.procedure(f"{pid}-pta-{event}-2", pid, at(event + 3), [r.cpt("37249")], reason="stenosis")
            yield from (patent(d) for d in after)
    elif row.patency == "occlusion-reopened":
        if ordinal in (0, 2):
            yield finding(event, "occluded")
            yield r.procedure(f"{pid}-lysis-{event}", pid, at(event + 1), [r.cpt("37212")], reason="occlusion")
            yield r.procedure(f"{pid}-mt-{event}", pid, at(event + 2), [r.cpt("37187")], reason="occlusion")
            yield r.procedure(f"{pid}-pta-{event}", pid, at(event + 2), [r.cpt("37248")], reason="occlusion")
        elif ordinal == 1:
            yield finding(event, "occluded", percent=100.0)
            yield r.procedure(
                f"{pid}-mt-{event}", pid, at(event + 2), [r.icd10pcs(f"06C{civ}3ZZ")],
                reason_observation_id=f"{pid}-pat-{event}",
            )  # fmt: skip
        else:  # acute re-thrombosis treated at once: the occlusion is known only from the reintervention
            yield r.procedure(f"{pid}-lysis-{event}", pid, at(event), [r.cpt("37212")], reason="occlusion")
            yield r.procedure(
                f"{pid}-restent-{event}", pid, at(event), [r.cpt("37238")], reason="occlusion",
                sites=r.body_sites(row.segment_names()[:1], side),
            )  # fmt: skip
            yield patent(event)
        yield from (patent(d) for d in after)
    elif row.patency == "occlusion-lost":
        if ordinal == 0:
            yield finding(event, "occluded")
            yield from (finding(d, "occluded") for d in after)
        elif ordinal == 1:
            yield finding(event, "occluded")
            yield r.procedure(
                f"{pid}-mt-{event}", pid, at(event + 2), [r.cpt("37187")], reason="occlusion", outcome="snomed-failure"
            )
            yield from (finding(d, "occluded") for d in after)
        elif ordinal == 2:
            yield finding(event, "occluded")
            yield r.procedure(
                f"{pid}-lysis-{event}", pid, at(event + 1), [r.cpt("37212")], reason="occlusion", outcome="pts-failure"
            )
            yield from (finding(d, "occluded", percent=100.0) for d in after)
        else:
            yield finding(event, "occluded", percent=100.0)
            yield from (finding(d, "occluded", percent=100.0) for d in after)
    else:  # pragma: no cover - the table is fixed
        raise ValueError(f"{pid}: unknown patency history {row.patency!r}")


def _assessments(k: int, row: PaperPatient, at: Callable[[int], dt.date]) -> Iterator[r.Resource]:
    """Villalta and CIVIQ-20 QuestionnaireResponses: baseline, 3 months, and a few out-of-window distractors."""
    pid = row.patient_id
    encoding: r.AnswerEncoding = "coding" if k % 5 == 4 else "integer"
    plan: list[tuple[int, int, int, bool]] = [
        (row.baseline_day, row.baseline_villalta, row.baseline_civiq20, row.baseline_ulcer),
        (row.followup_day, row.followup_villalta, row.followup_civiq20, False),
    ]
    if k % 7 == 0:  # a screening visit before the baseline window
        plan.append((-150, min(33, row.baseline_villalta + 1), min(100, row.baseline_civiq20 + 3), row.baseline_ulcer))
    if k % 9 == 4:  # a 12-month visit, outside the 3-month window
        plan.append((365, max(0, row.followup_villalta - 1), max(20, row.followup_civiq20 - 2), False))
    if k % 11 == 5:  # an early visit inside the 3-month window, farther from day 91 than the chosen one
        plan.append((62, min(33, row.followup_villalta + 2), min(100, row.followup_civiq20 + 5), False))
    for day, villalta, civiq, ulcer in plan:
        tag = f"m{-day}" if day < 0 else f"d{day}"
        yield r.villalta_response(
            f"{pid}-villalta-{tag}", pid, at(day), r.villalta_items(villalta, k + day), ulcer, encoding=encoding
        )
        yield r.civiq_response(f"{pid}-civiq20-{tag}", pid, at(day), r.civiq_items(civiq, k + day), encoding=encoding)


__all__ = ["DATA_CUT", "IMAGING_SCHEDULE", "paper_cohort_resources"]
