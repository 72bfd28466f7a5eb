"""Every QuestionnaireResponse ``fhir-pts synth`` writes conforms to the packaged Questionnaire.

Checked with :func:`fhir_pts.validate.check_questionnaire_response` (linkIds exist, answer types match item
types, answer codes are answer options, required items are answered in completed responses).

The paper cohort must be spotless. The random cohort deliberately plants, as ``fhir_pts.synth.random_cohort``
documents, CIVIQ-20 responses with 1-2 or 3 items left unanswered (to exercise imputation and the "no score"
rule), Villalta responses without the (optional) ulcer item, nested group items and responses that are not
``completed``. Of these only the unanswered CIVIQ-20 items are Questionnaire violations; they are told apart
from generator bugs by :func:`planted`: a CIVIQ-20 response whose only violations are 1 to 3 required ``q``
items left unanswered. Anything else — any Villalta violation, a wrong answer type, a code outside the
options, an unknown linkId, four or more missing items — is a bug.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fhir_pts.cli import main
from fhir_pts.conformance import questionnaire
from fhir_pts.validate import check_questionnaire_response

Resource = dict[str, Any]
QUESTIONNAIRES = {
    "https://fhir-pts.org/fhir/Questionnaire/villalta": "villalta",
    "https://fhir-pts.org/fhir/Questionnaire/civiq-20": "civiq-20",
}
_MISSING_CIVIQ_ITEM = re.compile(r"item 'q([1-9]|1[0-9]|20)': required but not answered")


def responses_written(out: Path) -> list[Resource]:
    """The QuestionnaireResponses in what ``fhir-pts synth`` wrote (a Bundle file or an NDJSON folder)."""
    if out.is_file():
        bundle = json.loads(out.read_text(encoding="utf-8"))
        found = [e["resource"] for e in bundle["entry"]]
    else:
        found = [json.loads(line) for p in sorted(out.glob("*.ndjson")) for line in p.read_text().splitlines()]
    return [x for x in found if x["resourceType"] == "QuestionnaireResponse"]


def violations(qr: Resource) -> list[str]:
    name = QUESTIONNAIRES[qr["questionnaire"].split("|")[0]]
    return check_questionnaire_response(qr, questionnaire(name))


def planted(qr: Resource, problems: list[str]) -> bool:
    """Whether ``problems`` are the generator's documented noise: 1-3 CIVIQ-20 items left unanswered."""
    return (
        qr["questionnaire"].split("|")[0].endswith("/civiq-20")
        and 1 <= len(problems) <= 3
        and all(_MISSING_CIVIQ_ITEM.fullmatch(p) for p in problems)
    )


def test_planted_tells_noise_from_bugs() -> None:
    civiq = {"questionnaire": "https://fhir-pts.org/fhir/Questionnaire/civiq-20|1.0"}
    villalta = {"questionnaire": "https://fhir-pts.org/fhir/Questionnaire/villalta"}
    missing = [f"item 'q{i}': required but not answered" for i in (3, 7, 12, 15)]
    assert planted(civiq, missing[:1]) and planted(civiq, missing[:3])
    assert not planted(civiq, missing)  # 4 missing: never planted
    assert not planted(civiq, [*missing[:1], "item 'q2': valueInteger 6 is not an answer option (1, 2, 3, 4, 5)"])
    assert not planted(villalta, ["item 'pain': required but not answered"])
    assert not planted(civiq, [])


def test_paper_cohort_responses_all_conform(tmp_path: Path) -> None:
    out = tmp_path / "paper.json"
    assert main(["synth", "--out", str(out), "-q"]) == 0
    responses = responses_written(out)
    assert len(responses) == 198  # 42 patients, Villalta + CIVIQ-20 at each planned assessment
    assert {qr["id"]: violations(qr) for qr in responses if violations(qr)} == {}


@pytest.mark.parametrize("seed", [0, 5])
def test_random_cohort_responses_conform_but_for_planted_noise(tmp_path: Path, seed: int) -> None:
    out = tmp_path / "random"
    assert main(["synth", "--patients", "40", "--seed", str(seed), "--out", str(out), "-q"]) == 0
    responses = responses_written(out)
    assert responses and all(qr["questionnaire"].split("|")[0] in QUESTIONNAIRES for qr in responses)
    noise, bugs = {}, {}
    for qr in responses:
        problems = violations(qr)
        if problems:
            (noise if planted(qr, problems) else bugs)[qr["id"]] = problems
    assert bugs == {}
    # The noise is really there (otherwise this test would not show that it is told apart).
    assert noise
