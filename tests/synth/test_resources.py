"""Resource builders: item spreading and the questionnaire shapes."""

from __future__ import annotations

import datetime as dt

import pytest

from fhir_pts import codes
from fhir_pts.synth import resources as r


@pytest.mark.parametrize("total", [0, 1, 7, 14, 19, 33])
def test_villalta_items_sum_and_range(total: int) -> None:
    for profile in range(12):
        items = r.villalta_items(total, profile)
        assert len(items) == 11 and sum(items) == total and all(0 <= x <= 3 for x in items)


@pytest.mark.parametrize("total", [20, 21, 39, 57, 72, 99, 100])
def test_civiq_items_sum_and_range(total: int) -> None:
    for profile in range(25):
        items = r.civiq_items(total, profile)
        assert len(items) == 20 and sum(items) == total and all(1 <= x <= 5 for x in items)


def test_spread_total_follows_weights_and_rejects_unreachable() -> None:
    # ideal shares 4, 2, 0 -> the first is capped at 3, the leftover unit goes to the next largest remainder
    assert r.spread_total(6, [2.0, 1.0, 0.0], 0, 3) == [3, 3, 0]
    assert r.spread_total(4, [1.0, 1.0], 0, 3) == [2, 2]
    with pytest.raises(ValueError, match="not reachable"):
        r.spread_total(34, [1.0] * 11, 0, 3)


def test_items_have_a_realistic_spread() -> None:
    """A mid-range total is not put on one or two items only."""
    items = r.villalta_items(14, 3)
    assert sum(1 for x in items if x > 0) >= 6


def test_civiq_response_missing_and_nested() -> None:
    qr = r.civiq_response("q", "p", dt.date(2020, 1, 1), [3] * 20, missing=[0, 19], nested=True, encoding="coding")
    groups = {g["linkId"]: g["item"] for g in qr["item"]}
    assert set(groups) == set(codes.CIVIQ20_DIMENSIONS)
    link_ids = [i["linkId"] for g in groups.values() for i in g]
    assert sorted(link_ids) == sorted(codes.CIVIQ20_ITEMS[1:19])
    assert groups["pain"][0]["answer"] == [{"valueCoding": {"system": r.ANSWER_SYSTEMS[codes.CIVIQ20_QUESTIONNAIRE],
                                                            "code": "3"}}]  # fmt: skip


def test_villalta_response_ulcer_is_boolean_and_optional() -> None:
    qr = r.villalta_response("v", "p", dt.date(2020, 1, 1), [1] * 11, True, questionnaire_version="1.0")
    assert qr["questionnaire"] == codes.VILLALTA_QUESTIONNAIRE + "|1.0"
    assert qr["item"][-1] == {"linkId": "ulcer", "answer": [{"valueBoolean": True}]}
    qr = r.villalta_response("v", "p", dt.date(2020, 1, 1), [1] * 11, None)
    assert [i["linkId"] for i in qr["item"]] == list(codes.VILLALTA_ITEMS)
