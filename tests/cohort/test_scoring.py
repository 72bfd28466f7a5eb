"""Villalta and CIVIQ-20 scoring (contract §2), hand-computed values and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts.codes import CIVIQ20_DIMENSIONS, CIVIQ20_ITEMS, VILLALTA_ITEMS
from fhir_pts.instruments.scoring import (
    Civiq20Score,
    civiq20_from_total,
    civiq20_gis,
    score_civiq20,
    villalta_class,
    villalta_total,
)

from .factories import civiq_items, villalta_items

CLASS_RANK = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}


# --- Villalta total ---------------------------------------------------------------------------------------------


def test_villalta_total_is_the_sum_of_the_eleven_items() -> None:
    # 3+2+1+0+3+2+1+0+3+2+1 = 18
    assert villalta_total(villalta_items([3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1])) == 18


def test_villalta_total_range_ends() -> None:
    assert villalta_total(villalta_items(0)) == 0
    assert villalta_total(villalta_items(3)) == 33


def test_villalta_ulcer_is_never_added() -> None:
    items: dict[str, object] = dict(villalta_items(2))
    items["ulcer"] = 1
    assert villalta_total(items) == 22  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", VILLALTA_ITEMS)
def test_villalta_any_missing_item_gives_no_total(missing: str) -> None:
    assert villalta_total(villalta_items(1, drop=[missing])) is None


@pytest.mark.parametrize("bad", [-1, 4, True, 1.5])
def test_villalta_out_of_range_item_is_an_error_naming_the_item(bad: object) -> None:
    items: dict[str, object] = dict(villalta_items(1))
    items["redness"] = bad
    with pytest.raises(ValueError, match="redness"):
        villalta_total(items)  # type: ignore[arg-type]


# --- Villalta class ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (0, "none"),
        (4, "none"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (33, "severe"),
    ],
)
def test_villalta_class_by_total(total: int, expected: str) -> None:
    assert villalta_class(total, False) == expected
    assert villalta_class(total, None) == expected  # total-only Observation: unknown ulcer, classed by total


def test_villalta_ulcer_makes_any_total_severe() -> None:
    assert villalta_class(0, True) == "severe"
    assert villalta_class(None, True) == "severe"


def test_villalta_class_unknown_without_total_or_ulcer() -> None:
    assert villalta_class(None, False) is None
    assert villalta_class(None, None) is None


@pytest.mark.parametrize("bad", [-1, 34])
def test_villalta_class_rejects_total_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match="0-33"):
        villalta_class(bad, False)


@given(st.lists(st.integers(0, 3), min_size=11, max_size=11), st.booleans())
def test_villalta_total_in_range_and_class_follows_total_and_ulcer(values: list[int], ulcer: bool) -> None:
    total = villalta_total(villalta_items(values))
    assert total == sum(values)
    assert 0 <= total <= 33
    klass = villalta_class(total, ulcer)
    if ulcer or total >= 15:
        assert klass == "severe"
    else:
        assert klass == ("none" if total < 5 else "mild" if total < 10 else "moderate")


@given(st.integers(0, 32), st.sampled_from([False, None, True]))
def test_villalta_class_never_decreases_with_total(total: int, ulcer: bool | None) -> None:
    assert CLASS_RANK[villalta_class(total, ulcer)] <= CLASS_RANK[villalta_class(total + 1, ulcer)]  # type: ignore[index]


# --- CIVIQ-20 ---------------------------------------------------------------------------------------------------


def test_civiq20_complete_response() -> None:
    # q1..q20 = 3 everywhere: raw 60, GIS (60-20)/80*100 = 50; pain 4*3, physical 4*3, social 3*3, psych 9*3
    score = score_civiq20(civiq_items(3))
    assert score == Civiq20Score(
        raw=60.0, gis=50.0, pain=12.0, physical=12.0, social=9.0, psychological=27.0, imputed=False, imputed_items=()
    )


def test_civiq20_range_ends() -> None:
    best, worst = score_civiq20(civiq_items(1)), score_civiq20(civiq_items(5))
    assert best is not None and (best.raw, best.gis) == (20.0, 0.0)
    assert worst is not None and (worst.raw, worst.gis) == (100.0, 100.0)


def test_civiq20_dimension_sums_follow_the_mapping() -> None:
    # q_i = 1 except q9 = 5 (physical) and q8 = 4 (social): physical 1+1+1+5 = 8, social 4+1+1 = 6
    items = civiq_items(1)
    items["q9"], items["q8"] = 5, 4
    score = score_civiq20(items)
    assert score is not None
    assert (score.pain, score.physical, score.social, score.psychological) == (4.0, 8.0, 6.0, 9.0)
    assert score.raw == 27.0
    assert score.gis == pytest.approx(8.75)  # (27-20)/80*100


def test_civiq20_one_missing_item_gets_its_dimension_mean() -> None:
    # pain q2, q3, q4 = 2, 3, 4 → q1 := 3; pain 12; everything else 1: physical 4, social 3, psych 9 → raw 28
    items = civiq_items(1, drop=["q1"])
    items.update(q2=2, q3=3, q4=4)
    score = score_civiq20(items)
    assert score is not None
    assert score.pain == 12.0
    assert score.raw == 28.0
    assert score.gis == 10.0
    assert score.imputed and score.imputed_items == ("q1",)


def test_civiq20_two_missing_items_in_two_dimensions() -> None:
    # q1 missing, pain answers 2, 3, 5 → mean 10/3 → pain 10 + 10/3; q8 missing, social answers 2, 5 → 3.5 →
    # social 10.5; physical 4, psych 9 → raw = 13.333.. + 4 + 10.5 + 9 = 36.8333..
    items = civiq_items(1, drop=["q1", "q8"])
    items.update(q2=2, q3=3, q4=5, q10=2, q11=5)
    score = score_civiq20(items)
    assert score is not None
    assert score.pain == pytest.approx(10 + 10 / 3)
    assert score.social == pytest.approx(10.5)
    assert score.raw == pytest.approx(36 + 5 / 6)
    assert score.gis == pytest.approx((36 + 5 / 6 - 20) / 80 * 100)
    assert score.imputed_items == ("q1", "q8")


def test_civiq20_two_missing_items_in_one_dimension() -> None:
    # social q10, q11 missing, q8 = 4 → social 12; others 1 → raw 4 + 4 + 12 + 9 = 29
    items = civiq_items(1, drop=["q10", "q11"])
    items["q8"] = 4
    score = score_civiq20(items)
    assert score is not None and score.social == 12.0 and score.raw == 29.0


def test_civiq20_three_missing_items_give_no_score() -> None:
    assert score_civiq20(civiq_items(2, drop=["q1", "q10", "q20"])) is None


def test_civiq20_dimension_without_any_answer_gives_no_score() -> None:
    # Not possible with the contract mapping (smallest dimension: 3 items), so with a 2-item dimension.
    dimensions = dict(CIVIQ20_DIMENSIONS)
    dimensions["social"] = ("q8", "q10")
    dimensions["psychological"] = (*CIVIQ20_DIMENSIONS["psychological"], "q11")
    assert score_civiq20(civiq_items(2, drop=["q8", "q10"]), dimensions) is None
    assert score_civiq20(civiq_items(2, drop=["q8"]), dimensions) is not None


def test_civiq20_one_item_dimension_mapping() -> None:
    dimensions = dict(CIVIQ20_DIMENSIONS)
    dimensions["pain"] = ("q1",)
    dimensions["physical"] = ("q2", "q3", "q4", "q5", "q6", "q7", "q9")
    items = civiq_items(2)
    items["q1"] = 5
    score = score_civiq20(items, dimensions)
    assert score is not None and (score.pain, score.physical, score.raw) == (5.0, 14.0, 43.0)
    assert score_civiq20(civiq_items(2, drop=["q1"]), dimensions) is None


def test_civiq20_mapping_must_partition_the_items() -> None:
    dimensions = dict(CIVIQ20_DIMENSIONS)
    dimensions["social"] = ("q8", "q10")  # q11 in no dimension
    with pytest.raises(ValueError, match="partition"):
        score_civiq20(civiq_items(2), dimensions)


@pytest.mark.parametrize("bad", [0, 6, True])
def test_civiq20_out_of_range_answer_is_an_error_naming_the_item(bad: object) -> None:
    items: dict[str, object] = dict(civiq_items(2))
    items["q7"] = bad
    with pytest.raises(ValueError, match="q7"):
        score_civiq20(items)  # type: ignore[arg-type]


def test_civiq20_from_total() -> None:
    score = civiq20_from_total(57)
    assert (score.raw, score.gis, score.pain, score.imputed) == (57.0, pytest.approx(46.25), None, False)
    for bad in (19, 101, 19.5, 100.25):
        with pytest.raises(ValueError, match="20-100"):
            civiq20_from_total(bad)


def test_civiq20_from_fractional_total() -> None:
    # contract §1: a civiq20-total Observation holds the raw sum 20-100, which may be fractional (imputed items)
    score = civiq20_from_total(58.75)
    assert (score.raw, score.gis) == (58.75, pytest.approx(48.4375))


answers = st.lists(st.integers(1, 5), min_size=20, max_size=20)


@given(answers)
def test_civiq20_imputation_never_changes_a_complete_response(values: list[int]) -> None:
    score = score_civiq20(civiq_items(values))
    assert score is not None
    assert not score.imputed and score.imputed_items == ()
    assert score.raw == sum(values)
    assert score.pain + score.physical + score.social + score.psychological == score.raw  # type: ignore[operator]


@given(answers, st.sets(st.sampled_from(CIVIQ20_ITEMS), max_size=5))
def test_civiq20_stays_in_range_and_scores_iff_at_most_two_missing(values: list[int], dropped: set[str]) -> None:
    score = score_civiq20(civiq_items(values, drop=dropped))
    if len(dropped) >= 3:
        assert score is None
        return
    assert score is not None
    assert 20 <= score.raw <= 100
    assert 0 <= score.gis <= 100
    assert 4 <= score.pain <= 20 and 4 <= score.physical <= 20  # type: ignore[operator]
    assert 3 <= score.social <= 15 and 9 <= score.psychological <= 45  # type: ignore[operator]
    assert score.imputed == bool(dropped)
    assert set(score.imputed_items) == dropped


@given(st.sampled_from(sorted(CIVIQ20_DIMENSIONS)), st.integers(1, 5), st.data())
def test_civiq20_imputing_a_uniform_dimension_equals_answering_it(
    dimension: str, value: int, data: st.DataObject
) -> None:
    names = CIVIQ20_DIMENSIONS[dimension]
    dropped = data.draw(st.sampled_from(names))
    items = civiq_items(2)
    items.update({name: value for name in names})
    full, imputed = score_civiq20(items), score_civiq20({k: v for k, v in items.items() if k != dropped})
    assert full is not None and imputed is not None
    assert math.isclose(full.raw, imputed.raw) and getattr(full, dimension) == getattr(imputed, dimension)


@given(st.floats(20, 100), st.floats(20, 100))
def test_civiq20_gis_is_linear_in_raw(a: float, b: float) -> None:
    assert civiq20_gis(a) == pytest.approx(1.25 * (a - 20))
    assert civiq20_gis(a) - civiq20_gis(b) == pytest.approx(1.25 * (a - b), abs=1e-9)
