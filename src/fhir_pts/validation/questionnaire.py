"""A QuestionnaireResponse against its Questionnaire: linkIds exist, answer types match item types,
required items answered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from fhir_pts.adapters.questionnaire_response import flatten_items
from fhir_pts.validation.report import Json

#: The answer ``value[x]`` each Questionnaire item type takes (R4 ``Questionnaire.item.type``).
_ANSWER_KEY: dict[str, str] = {
    "boolean": "valueBoolean",
    "decimal": "valueDecimal",
    "integer": "valueInteger",
    "date": "valueDate",
    "dateTime": "valueDateTime",
    "time": "valueTime",
    "string": "valueString",
    "text": "valueString",
    "url": "valueUri",
    "choice": "valueCoding",
    "open-choice": "valueCoding",
    "attachment": "valueAttachment",
    "reference": "valueReference",
    "quantity": "valueQuantity",
}
_PYTHON_TYPE: dict[str, type | tuple[type, ...]] = {
    "valueBoolean": bool,
    "valueInteger": int,
    "valueDecimal": (int, float),
    "valueString": str,
    "valueDate": str,
    "valueDateTime": str,
    "valueTime": str,
    "valueUri": str,
    "valueCoding": dict,
    "valueAttachment": dict,
    "valueReference": dict,
    "valueQuantity": dict,
}


def _questionnaire_items(items: Any) -> Iterator[Json]:
    for item in items or ():
        if isinstance(item, dict):
            yield item
            yield from _questionnaire_items(item.get("item"))


def _value_of(answer: Json) -> tuple[str, Any] | None:
    for key, value in answer.items():
        if key.startswith("value"):
            return key, value
    return None


def _check_answer(link_id: str, item: Json, key: str, value: Any) -> str | None:
    """What is wrong with one answer ``{key: value}`` to Questionnaire item ``item`` (``None``: nothing)."""
    item_type = str(item.get("type"))
    expected = _ANSWER_KEY.get(item_type)
    options = [o for o in item.get("answerOption") or () if isinstance(o, dict)]
    option_codings = [o["valueCoding"] for o in options if isinstance(o.get("valueCoding"), dict)]
    option_codes = [str(c.get("code")) for c in option_codings]
    if item_type == "choice" and key == "valueInteger" and option_codes and all(c.isdigit() for c in option_codes):
        # Contract §1: a score item may be answered valueInteger instead of the option's code.
        if isinstance(value, bool) or not isinstance(value, int):
            return f"item {link_id!r}: valueInteger {value!r} is not an integer"
        if str(value) not in option_codes:
            return f"item {link_id!r}: valueInteger {value} is not an answer option ({', '.join(option_codes)})"
        return None
    if expected is None:
        return f"item {link_id!r}: item type {item_type!r} takes no answer, got {key}"
    if key != expected:
        return f"item {link_id!r}: {key} does not match item type {item_type!r} (expected {expected})"
    python_type = _PYTHON_TYPE.get(key)
    wrong_type = python_type is not None and (
        not isinstance(value, python_type) or (key in ("valueInteger", "valueDecimal") and isinstance(value, bool))
    )
    if wrong_type:
        return f"item {link_id!r}: {key} {value!r} is not a valid {key[5:].lower()}"
    if key == "valueCoding" and option_codings and item_type == "choice":
        system, code = value.get("system"), value.get("code")
        for option in option_codings:
            if str(option.get("code")) == str(code) and option.get("system") in (None, system):
                return None
        return f"item {link_id!r}: valueCoding code {code!r} is not an answer option ({', '.join(option_codes)})"
    return None


def check_questionnaire_response(qr: Json, questionnaire: Json, *, strict_groups: bool = False) -> list[str]:
    """Check a QuestionnaireResponse (a dict) against its Questionnaire (a dict); ``[]`` when it conforms.

    Checked: ``questionnaire`` names this Questionnaire (canonical, and its version when one is written);
    every answered linkId exists in the Questionnaire; an item is answered at most once and, unless it
    ``repeats``, with one answer; the answer type matches the item type (``choice`` → ``valueCoding`` whose
    code — and system when the option has one — is an ``answerOption``; ``boolean`` → ``valueBoolean``,
    ``integer`` → ``valueInteger`` ...); every ``required`` item is answered when the response is ``completed``
    or ``amended`` (FHIR enforces ``required`` only then).

    Accepted as the contract (§1) reads them: a ``valueInteger`` answering a ``choice`` item whose options are
    integer codes (it must be one of them); items nested in group items that the Questionnaire does not have
    (the adapters read items wherever they sit) — reported only with ``strict_groups=True``.

    :returns: one message per problem, each naming the item's linkId.
    """
    name = questionnaire.get("id") or questionnaire.get("name") or "questionnaire"
    problems: list[str] = []
    written = qr.get("questionnaire")
    canonical, _, version = str(written or "").partition("|")
    if canonical != questionnaire.get("url"):
        problems.append(f"questionnaire {written!r} is not {questionnaire.get('url')}")
    elif version and questionnaire.get("version") and version != questionnaire.get("version"):
        problems.append(f"questionnaire version {version!r} is not the packaged {questionnaire.get('version')!r}")
    definitions = {str(i.get("linkId")): i for i in _questionnaire_items(questionnaire.get("item"))}
    answered: set[str] = set()
    seen: Counter[str] = Counter()
    for _location, item in flatten_items(qr.get("item")):
        link_id = str(item.get("linkId"))
        answers = [a for a in item.get("answer") or () if isinstance(a, dict)]
        definition = definitions.get(link_id)
        if definition is None:
            if answers:
                problems.append(f"item {link_id!r}: linkId is not in Questionnaire {name}")
            elif strict_groups:
                problems.append(f"item {link_id!r}: group linkId is not in Questionnaire {name}")
            continue
        seen[link_id] += 1
        if seen[link_id] == 2:
            problems.append(f"item {link_id!r}: answered more than once")
        if len(answers) > 1 and not definition.get("repeats"):
            problems.append(f"item {link_id!r}: {len(answers)} answers, but the item does not repeat")
        for answer in answers:
            value = _value_of(answer)
            if value is None:
                continue
            answered.add(link_id)
            message = _check_answer(link_id, definition, *value)
            if message:
                problems.append(message)
    if qr.get("status") in ("completed", "amended"):
        for link_id, definition in definitions.items():
            if definition.get("required") and link_id not in answered:
                problems.append(f"item {link_id!r}: required but not answered")
    return problems
