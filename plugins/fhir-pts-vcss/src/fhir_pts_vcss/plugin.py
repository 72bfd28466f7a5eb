"""The revised Venous Clinical Severity Score (VCSS) as a fhir-pts instrument.

Revised VCSS (Vasquez et al., J Vasc Surg 2010;52:1387-96): ten clinician-rated attributes of the treated
leg — pain, varicose veins, venous edema, skin pigmentation, inflammation, induration, number of active ulcers,
active ulcer duration, active ulcer size, use of compression therapy — each 0-3; total 0-30, higher = more
severe. No severity classes are defined by the revision, so none are declared.

The whole integration with fhir-pts is :func:`fhir_pts_instruments` below (entry point ``vcss`` of the
``fhir_pts`` group): from this declaration fhir-pts reads VCSS QuestionnaireResponses and total Observations,
adds ``baseline_vcss`` / ``followup_vcss`` / ``vcss_gain`` to the cohort and runs the measures ``vcss`` and
``vcss-gain-regression``.

Missing-item rule: every attribute is needed (no imputation), except that with no active ulcer
(``ulcer-number`` answered 0) a missing ulcer duration or size is scored 0 — the revision scores them "N/A" = 0.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from fhir_pts import hookimpl
from fhir_pts.instruments import Answers, Instrument, Scored, SummedScore

#: Canonical base of this plugin's artefacts (Questionnaire, CodeSystems).
BASE = "https://fhir-pts.org/plugins/vcss"
QUESTIONNAIRE_URL = f"{BASE}/Questionnaire/vcss"
#: Observation code of a VCSS total (0-30) that may stand in for a response.
VCSS_TOTAL = (f"{BASE}/CodeSystem/vcss", "vcss-total")

#: The ten attributes, in the order of the revised table (the Questionnaire's linkIds).
VCSS_ITEMS: tuple[str, ...] = (
    "pain",
    "varicose-veins",
    "venous-edema",
    "skin-pigmentation",
    "inflammation",
    "induration",
    "ulcer-number",
    "ulcer-duration",
    "ulcer-size",
    "compression",
)
#: Attributes scored "N/A" = 0 when there is no active ulcer.
ULCER_DETAILS = ("ulcer-duration", "ulcer-size")

_SUM = SummedScore("VCSS", VCSS_ITEMS, (0, 30), max_missing=0)


def _data(name: str) -> dict[str, Any]:
    return dict(json.loads(resources.files("fhir_pts_vcss").joinpath("data", name).read_text(encoding="utf-8")))


def score_vcss(answers: Answers) -> Scored:
    """The VCSS total: the sum of the ten attributes (0-30); a total Observation is taken as it is (0-30).

    :raises fhir_pts.instruments.Unscorable: an attribute is missing (the ulcer duration and size may be
        missing when the number of active ulcers is 0), or a total outside 0-30.
    """
    if not answers.from_total and answers.items.get("ulcer-number") == 0:
        items = {**dict.fromkeys(ULCER_DETAILS, 0), **answers.items}
        answers = Answers(items, answers.flags, answers.total)
    return _SUM(answers)


VCSS = Instrument(
    id="vcss",
    title="VCSS",
    questionnaires=(QUESTIONNAIRE_URL,),
    items=VCSS_ITEMS,
    item_range=(0, 3),
    score=score_vcss,
    total_range=(0, 30),
    total_integer=True,
    total_codes=(VCSS_TOTAL,),
    score_label="total (0-30)",
    questionnaire=_data("Questionnaire-vcss.json"),
    measures=(_data("Measure-vcss.json"), _data("Measure-vcss-gain-regression.json")),
    descriptions={
        "baseline_vcss": "baseline revised VCSS total (sum of 10 attributes, 0-30)",
        "followup_vcss": "3-month revised VCSS total (0-30)",
        "vcss_gain": "baseline - 3-month VCSS total (positive = improvement)",
    },
)


@hookimpl
def fhir_pts_instruments() -> list[Instrument]:
    """The revised VCSS."""
    return [VCSS]
