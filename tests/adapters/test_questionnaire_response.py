"""QuestionnaireResponse adapter: Villalta and CIVIQ-20 responses in every item layout and answer type."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts import codes
from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.facts import ScoreAssessmentFact
from fhir_pts.adapters.questionnaire_response import flatten_items

from .factories import answer_item, civiq_items, questionnaire_response, villalta_items

VILLALTA, CIVIQ = codes.VILLALTA_QUESTIONNAIRE, codes.CIVIQ20_QUESTIONNAIRE


def test_flat_villalta_response():
    scores = dict(zip(codes.VILLALTA_ITEMS, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2], strict=True))
    output = adapt_resource(questionnaire_response(items=villalta_items(scores, ulcer=True)))
    assert output.problems == []
    assert output.facts == [
        ScoreAssessmentFact(
            "qr1", "pat1", dt.date(2020, 1, 10), "villalta", tuple(scores.items()), None, (("ulcer", True),)
        )
    ]


@pytest.mark.parametrize("canonical", [VILLALTA, VILLALTA + "|1.0", VILLALTA + "|2.1.3"])
def test_canonical_with_or_without_version(canonical):
    [fact] = adapt_resource(questionnaire_response(questionnaire=canonical, items=villalta_items())).facts
    assert fact.instrument == "villalta"


def test_other_questionnaires_are_irrelevant():
    for canonical in [
        "http://loinc.org/q/44249-1",
        VILLALTA + "-short",
        "https://fhir-pts.org/fhir/Questionnaire/VILLALTA",
    ]:
        output = adapt_resource(questionnaire_response(questionnaire=canonical, status="in-progress"))
        assert output.relevant is False and output.problems == []


def test_items_nested_in_groups_and_under_answers_are_read():
    symptoms = [answer_item(link_id, 2) for link_id in codes.VILLALTA_ITEMS[:5]]
    signs = [answer_item(link_id, 1) for link_id in codes.VILLALTA_ITEMS[5:]]
    ulcer = answer_item("ulcer", False, "valueBoolean")
    ulcer["answer"][0]["item"] = [answer_item("ulcer-site", "leg", "valueString")]  # nested under an answer
    items = [
        {"linkId": "symptoms", "item": symptoms[:3]},
        {
            "linkId": "more",
            "item": [{"linkId": "deeper", "answer": [{"valueBoolean": True, "item": symptoms[3:]}]}],
        },
        {"linkId": "signs", "item": [*signs, ulcer]},
    ]
    output = adapt_resource(questionnaire_response(items=items))
    [fact] = output.facts
    assert dict(fact.items) == {
        **dict.fromkeys(codes.VILLALTA_ITEMS[:5], 2),
        **dict.fromkeys(codes.VILLALTA_ITEMS[5:], 1),
    }
    assert fact.flags == (("ulcer", False),)
    # the two answered items that are not Villalta items are named, as warnings
    assert sorted((p.severity, p.reason.split("'")[1]) for p in output.problems) == [
        ("warning", "deeper"),
        ("warning", "ulcer-site"),
    ]


def test_value_coding_read_by_code_alone():
    [fact] = adapt_resource(questionnaire_response(items=villalta_items({"pain": 3}, kind="valueCoding"))).facts
    assert dict(fact.items)["pain"] == 3 and len(fact.items) == 11


def test_civiq20_response():
    scores = {f"q{i}": 1 + i % 5 for i in range(1, 21)}
    output = adapt_resource(questionnaire_response(questionnaire=CIVIQ, items=civiq_items(scores)))
    assert output.problems == []
    [fact] = output.facts
    assert fact.instrument == "civiq20" and fact.items == tuple(scores.items()) and fact.flags == ()


@pytest.mark.parametrize("value", [0, 6, -1])
def test_civiq20_answer_out_of_range_is_left_out_and_reported(value):
    output = adapt_resource(questionnaire_response(questionnaire=CIVIQ, items=civiq_items({"q7": value})))
    [fact] = output.facts
    assert "q7" not in dict(fact.items) and len(fact.items) == 19
    [problem] = output.problems
    assert (problem.field, problem.severity) == ("item[q7]", "skipped") and "1–5" in problem.reason


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (4, "valueInteger"),
        ("-1", "valueCoding"),
        ("x", "valueCoding"),
        (True, "valueInteger"),
        (1.0, "valueDecimal"),
        ("2", "valueString"),
    ],
)
def test_villalta_bad_answers_are_left_out_and_reported(value, kind):
    items = [i for i in villalta_items() if i["linkId"] != "pain"] + [answer_item("pain", value, kind)]
    output = adapt_resource(questionnaire_response(items=items))
    [fact] = output.facts
    assert "pain" not in dict(fact.items)
    assert [p.field for p in output.problems] == ["item[pain]"]


def test_missing_ulcer_is_no_ulcer_with_a_warning():
    output = adapt_resource(questionnaire_response(items=villalta_items(ulcer=None)))
    assert output.facts[0].flags == (("ulcer", False),)
    [problem] = output.problems
    assert (problem.field, problem.severity) == ("item[ulcer]", "warning")


def test_ulcer_not_boolean_is_no_ulcer_with_a_warning():
    items = [*villalta_items(ulcer=None), answer_item("ulcer", "yes", "valueString")]
    output = adapt_resource(questionnaire_response(items=items))
    assert output.facts[0].flags == (("ulcer", False),) and [p.field for p in output.problems] == ["item[ulcer]"]


def test_missing_items_are_reported_once():
    items = [i for i in villalta_items() if i["linkId"] not in ("pain", "redness")]
    items.append({"linkId": "pain"})  # present but unanswered
    output = adapt_resource(questionnaire_response(items=items))
    assert len(output.facts[0].items) == 9
    [problem] = output.problems
    assert problem.field == "item" and "pain, redness" in problem.reason and "2 of 11" in problem.reason


def test_item_answered_twice_keeps_the_first():
    items = [*villalta_items({"pain": 2}), answer_item("pain", 3)]
    output = adapt_resource(questionnaire_response(items=items))
    assert dict(output.facts[0].items)["pain"] == 2
    assert [(p.field, p.severity) for p in output.problems] == [("item[pain]", "warning")]


def test_several_answers_to_one_item_is_a_problem():
    items = [i for i in villalta_items() if i["linkId"] != "pain"]
    items.append({"linkId": "pain", "answer": [{"valueInteger": 1}, {"valueInteger": 2}]})
    output = adapt_resource(questionnaire_response(items=items))
    assert "pain" not in dict(output.facts[0].items) and [p.field for p in output.problems] == ["item[pain]"]


@pytest.mark.parametrize("status", ["completed", "amended"])
def test_accepted_statuses(status):
    assert len(adapt_resource(questionnaire_response(items=villalta_items(), status=status)).facts) == 1


@pytest.mark.parametrize("status", ["in-progress", "stopped", "entered-in-error", None])
def test_other_statuses_are_reported(status):
    output = adapt_resource(questionnaire_response(items=villalta_items(), status=status))
    assert output.facts == [] and [p.field for p in output.problems] == ["status"]


@pytest.mark.parametrize(("authored", "field"), [(None, "authored"), ("2020-01", "authored"), ("2020", "authored")])
def test_missing_or_partial_authored_is_reported(authored, field):
    output = adapt_resource(questionnaire_response(items=villalta_items(), authored=authored))
    assert output.facts == [] and [p.field for p in output.problems] == [field]


@given(
    st.recursive(
        st.just([]), lambda children: st.lists(st.fixed_dictionaries({"item": children}), max_size=3), max_leaves=20
    )
)
def test_flatten_visits_every_nested_item(tree):
    def count(items):
        return sum(1 + count(i["item"]) for i in items)

    assert len(list(flatten_items(tree))) == count(tree)
