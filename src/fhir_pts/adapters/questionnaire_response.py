"""``QuestionnaireResponse`` of an instrument (Villalta, CIVIQ-20, a plugin's) →
:class:`~fhir_pts.adapters.facts.ScoreAssessmentFact`.

The instruments are those of the :class:`~fhir_pts.adapters.common.Vocabulary` (its
:class:`~fhir_pts.instruments.model.InstrumentIndex`): a response is recognised by its questionnaire canonical.

Items are read wherever they sit: top level, nested in groups (``item.item``) or under answers
(``answer.item``), so forms that group the Villalta symptoms and signs are read the same as flat ones.
Scoring (sum, class, CIVIQ-20 imputation) is not done here but by :mod:`fhir_pts.instruments.scoring`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_pts import codes
from fhir_pts.adapters.common import (
    AdapterOutput,
    ProblemSink,
    accepted_patient,
    as_list,
    as_text,
    day_or_problem,
    irrelevant,
)
from fhir_pts.adapters.facts import ScoreAssessmentFact
from fhir_pts.instruments.builtin import BUILTIN_INDEX
from fhir_pts.instruments.model import Coding
from fhir_pts.vocabulary import Vocabulary

#: The contract's questionnaire canonicals (no version) and their instruments.
QUESTIONNAIRES = BUILTIN_INDEX.questionnaires


def questionnaire_canonical(value: Any) -> str | None:
    """The canonical URL of ``QuestionnaireResponse.questionnaire`` without its ``|version``."""
    if not isinstance(value, str):
        return None
    return value.split("|", 1)[0]


def flatten_items(items: Any, path: str = "item") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every item of a (nested) item list, depth first, with a FHIRPath-like location for problems.

    Follows ``item.item`` and ``item.answer.item`` recursively (only where they exist: most forms are flat,
    and this runs for every response of an export).
    """
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        here = f"{path}[{i}]"
        yield here, item
        children = item.get("item")
        if children:
            yield from flatten_items(children, f"{here}.item")
        answers = item.get("answer")
        if answers:
            for a, answer in enumerate(as_list(answers)):
                if isinstance(answer, dict) and answer.get("item"):
                    yield from flatten_items(answer["item"], f"{here}.answer[{a}].item")


def _has_value(answer: dict[str, Any]) -> bool:
    """Whether an answer carries a ``value[x]`` (the common kinds first: this runs for every item)."""
    if "valueInteger" in answer or "valueCoding" in answer or "valueBoolean" in answer:
        return True
    return any(key.startswith("value") for key in answer)


def _answer_value(answer: dict[str, Any]) -> tuple[str, Any, str | None]:
    """``(kind, value, system)`` of an answer: ``valueInteger`` as is, ``valueCoding`` by its code (and system),
    else the first value[x]."""
    if "valueInteger" in answer:
        return "valueInteger", answer["valueInteger"], None
    if "valueCoding" in answer:
        coding = answer["valueCoding"]
        if not isinstance(coding, dict):
            return "valueCoding", None, None
        system = coding.get("system")
        return "valueCoding", coding.get("code"), system if isinstance(system, str) else None
    for key, value in answer.items():
        if key.startswith("value"):
            return key, value, None
    return "value[x]", None, None


def _score(kind: str, value: Any, system: str | None, mapped: dict[Coding, int] | None) -> int | None:
    """An item score from ``valueInteger`` (int, not bool), a ``valueCoding`` the instrument maps to a value
    (by system and code; by code alone when the answer or the mapping has no system), or a ``valueCoding`` code
    written as an integer."""
    if kind == "valueInteger" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind != "valueCoding" or not isinstance(value, str):
        return None
    if mapped:
        if system is not None and (system, value) in mapped:
            return mapped[(system, value)]
        if ("", value) in mapped:
            return mapped[("", value)]
        if system is None:
            found = {score for (_, code), score in mapped.items() if code == value}
            if len(found) == 1:
                return found.pop()
    if value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def adapt_questionnaire_response(
    resource: dict[str, Any], sink: ProblemSink, vocabulary: Vocabulary | None = None
) -> AdapterOutput:
    """A response to an instrument's questionnaire as an assessment; responses to other questionnaires are
    irrelevant.

    Questionnaire: one of the instruments' canonicals (``{base}/Questionnaire/villalta``,
    ``{base}/Questionnaire/civiq-20``, a plugin's), with or without ``|version``. Day = calendar date of
    ``authored``. Item answers: ``valueInteger``, or ``valueCoding`` read through the instrument's answer values
    or by a ``code`` written as an integer; in the instrument's item range (Villalta 0–3, CIVIQ-20 1–5). Flag
    items (Villalta ``ulcer``): ``valueBoolean``; when missing (or not a boolean) the response is read as
    *no ulcer* (``False``) and a warning is reported.

    Reported and skipped (whole response): status other than completed/amended, no patient, no full
    ``authored`` date. Reported, the item left out (the scoring reports the consequence): an answer of the
    wrong type or out of range, an item without answer, an item answered twice or with several answers.
    Reported as warning: an answered item whose linkId the questionnaire does not have.
    """
    index = vocabulary.instrument_index if vocabulary is not None else BUILTIN_INDEX
    canonical = questionnaire_canonical(resource.get("questionnaire"))
    spec = index.questionnaires.get(canonical) if canonical is not None else None
    if spec is None:
        return irrelevant()
    instrument, item_ids, low, high = spec.instrument, spec.items, spec.low, spec.high
    answer_values = spec.answer_values
    shared_values = answer_values.get("*")
    patient_id = accepted_patient(
        resource, sink, codes.QUESTIONNAIRE_RESPONSE_STATUSES, "completed or amended", "response"
    )
    if patient_id is None:
        return AdapterOutput([], sink.problems)
    day = day_or_problem(resource.get("authored"), "authored", sink, "authored (the date of the assessment)")
    if day is None:
        return AdapterOutput([], sink.problems)

    expected = set(item_ids)
    flag_ids = spec.flags
    scores: dict[str, int] = {}
    seen: set[str] = set()
    reported: set[str] = set()
    flags: dict[str, bool] = {}
    flags_seen: set[str] = set()
    for location, item in flatten_items(resource.get("item")):
        link_id = as_text(item.get("linkId"))
        valued = [a for a in as_list(item.get("answer")) if isinstance(a, dict) and _has_value(a)]
        is_flag = link_id in flag_ids
        if link_id is None or (link_id not in expected and not is_flag):
            if valued:
                sink.add(
                    f"{location}.linkId",
                    f"unknown linkId {link_id!r} for the {instrument} questionnaire; answer ignored",
                    "warning",
                )
            continue
        field_name = f"item[{link_id}]"
        if link_id in seen:
            sink.add(field_name, "item answered more than once; only the first is used", "warning")
            continue
        seen.add(link_id)
        if len(valued) != 1:
            if valued:
                reported.add(link_id)
                sink.add(field_name, f"{len(valued)} answers: expected one; item left out")
            continue  # no answer: reported below with the other missing items
        kind, value, system = _answer_value(valued[0])
        if is_flag:
            assert link_id is not None
            flags_seen.add(link_id)
            if kind == "valueBoolean" and isinstance(value, bool):
                flags[link_id] = value
            else:
                sink.add(field_name, f"{kind} {value!r}: expected valueBoolean; taken as no {link_id}", "warning")
            continue
        score = _score(kind, value, system, answer_values.get(link_id, shared_values) if answer_values else None)
        if score is None or not low <= score <= high:
            reported.add(link_id)
        if score is None:
            sink.add(
                field_name, f"{kind} {value!r}: expected valueInteger or valueCoding code {low}–{high}; item left out"
            )
        elif not low <= score <= high:
            sink.add(field_name, f"{kind} {value!r} out of range: expected {low}–{high}; item left out")
        else:
            scores[link_id] = score
    missing = [link_id for link_id in item_ids if link_id not in scores and link_id not in reported]
    if missing:
        sink.add(
            "item",
            f"no answer for {', '.join(missing)} ({len(missing)} of {len(item_ids)} {instrument} items)",
            "warning",
        )
    for flag in flag_ids:
        if flag not in flags:
            if flag not in flags_seen:
                sink.add(f"item[{flag}]", f"no {flag} answer: taken as no {flag}", "warning")
            flags[flag] = False
    fact = ScoreAssessmentFact(
        resource_id=str(sink.resource_id),
        patient_id=patient_id,
        day=day,
        instrument=instrument,
        items=tuple((link_id, scores[link_id]) for link_id in item_ids if link_id in scores),
        total=None,
        flags=tuple((flag, flags[flag]) for flag in flag_ids),
    )
    return AdapterOutput([fact], sink.problems)
