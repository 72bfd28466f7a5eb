"""A toy instrument declared by a plugin, for the tests that need an instrument besides Villalta and CIVIQ-20.

It lives on a foreign host (so the NDJSON pre-filter must learn it), answers with codings of its own system
(mapped by ``answer_values``), has a total-score Observation code, its own 3-month window (day 180) and a
higher-is-better score. Its cohort columns are ``baseline_toy``, ``followup_toy``, ``toy_gain``, ...
"""

from __future__ import annotations

from fhir_pts import hookimpl
from fhir_pts.cohort.model import TimePointWindows
from fhir_pts.instruments import Instrument, SummedScore
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS

HOST = "https://instruments.example.org"
ANSWER = f"{HOST}/CodeSystem/toy-answer"
TOY = Instrument(
    id="toy",
    title="Toy",
    questionnaires=(f"{HOST}/Questionnaire/toy",),
    items=("a", "b", "c"),
    item_range=(1, 4),
    score=SummedScore("Toy", ("a", "b", "c"), (3, 12), max_missing=1, classes=((3, "low"), (8, "high"))),
    total_range=(3, 12),
    total_integer=False,  # one missing item is imputed: fractional
    total_codes=((f"{HOST}/CodeSystem/toy", "toy-total"),),
    answer_values={"*": {(ANSWER, "lo"): 1, (ANSWER, "mid"): 2, (ANSWER, "hi"): 3, (ANSWER, "max"): 4}},
    classes=("low", "high"),
    improvement_notation="increase",
    windows=TimePointWindows(baseline_start=-30, baseline_end=0, followup_target=180, followup_start=150,
                             followup_end=210),
)  # fmt: skip
INSTRUMENTS = (*BUILTIN_INSTRUMENTS, TOY)


class ToyPlugin:
    @hookimpl
    def fhir_pts_instruments(self) -> list[Instrument]:
        return [TOY]
