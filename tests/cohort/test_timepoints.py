"""Choice of the baseline and 3-month assessments (contract §2 time points)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from fhir_pts.cohort.model import TimePointWindows
from fhir_pts.cohort.timepoints import Candidate, choose_baseline, choose_followup, choose_time_points

WINDOWS = TimePointWindows()


def qr(on: int, order: int = 0) -> Candidate[str]:
    return Candidate(day=on, is_questionnaire=True, read_order=order, payload=f"qr@{on}#{order}")


def obs(on: int, order: int = 0) -> Candidate[str]:
    return Candidate(day=on, is_questionnaire=False, read_order=order, payload=f"obs@{on}#{order}")


def test_baseline_is_the_latest_in_window() -> None:
    chosen = choose_baseline([qr(-100), qr(-30), qr(-5), qr(1), qr(70)], WINDOWS)
    assert chosen is not None and chosen.day == -5


def test_baseline_window_is_inclusive() -> None:
    assert choose_baseline([qr(-90)], WINDOWS).day == -90  # type: ignore[union-attr]
    assert choose_baseline([qr(-91), qr(0)], WINDOWS).day == 0  # type: ignore[union-attr]
    assert choose_baseline([qr(-91), qr(1)], WINDOWS) is None


def test_followup_is_the_closest_to_day_91() -> None:
    # |80-91| = 11, |100-91| = 9
    assert choose_followup([qr(80), qr(100), qr(140)], WINDOWS).day == 100  # type: ignore[union-attr]


def test_followup_tie_goes_to_the_earlier() -> None:
    # |85-91| = |97-91| = 6
    assert choose_followup([qr(97), qr(85)], WINDOWS).day == 85  # type: ignore[union-attr]


def test_followup_window_is_inclusive() -> None:
    assert choose_followup([qr(59), qr(150)], WINDOWS).day == 150  # type: ignore[union-attr]
    assert choose_followup([qr(60), qr(151)], WINDOWS).day == 60  # type: ignore[union-attr]
    assert choose_followup([qr(59), qr(151), qr(0)], WINDOWS) is None


def test_same_day_prefers_the_questionnaire_response_whatever_the_order() -> None:
    for candidates in itertools.permutations([obs(-3, order=9), qr(-3, order=1), qr(-20, order=5)]):
        assert choose_baseline(candidates, WINDOWS).payload == "qr@-3#1"  # type: ignore[union-attr]
    for candidates in itertools.permutations([obs(91, order=9), qr(91, order=1)]):
        assert choose_followup(candidates, WINDOWS).payload == "qr@91#1"  # type: ignore[union-attr]


def test_same_day_same_kind_prefers_the_later_read() -> None:
    for candidates in itertools.permutations([obs(-3, order=2), obs(-3, order=7), obs(-3, order=4)]):
        assert choose_baseline(candidates, WINDOWS).payload == "obs@-3#7"  # type: ignore[union-attr]
    for candidates in itertools.permutations([qr(95, order=2), qr(95, order=7)]):
        assert choose_followup(candidates, WINDOWS).payload == "qr@95#7"  # type: ignore[union-attr]


def test_closer_observation_beats_farther_questionnaire() -> None:
    # the QuestionnaireResponse preference only breaks same-day ties
    assert choose_followup([qr(100), obs(92)], WINDOWS).payload == "obs@92#0"  # type: ignore[union-attr]
    assert choose_baseline([qr(-10), obs(-2)], WINDOWS).payload == "obs@-2#0"  # type: ignore[union-attr]


def test_windows_are_parameters() -> None:
    windows = TimePointWindows(
        baseline_start=-30, baseline_end=-1, followup_target=180, followup_start=150, followup_end=210
    )
    baseline, followup = choose_time_points([qr(-40), qr(-20), qr(0), qr(91), qr(170), qr(195)], windows)
    assert baseline is not None and baseline.day == -20
    assert followup is not None and followup.day == 170  # |170-180| = 10 < |195-180| = 15


def test_nothing_to_choose() -> None:
    assert choose_time_points([], WINDOWS) == (None, None)


candidates = st.lists(
    st.builds(Candidate, st.integers(-120, 200), st.booleans(), st.integers(0, 1000), st.none()),
    max_size=8,
    unique_by=lambda c: c.read_order,
)


@given(candidates, st.randoms())
def test_choice_does_not_depend_on_list_order(pool: list[Candidate[None]], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(pool)
    rnd.shuffle(shuffled)
    assert choose_time_points(pool, WINDOWS) == choose_time_points(shuffled, WINDOWS)


@given(candidates)
def test_chosen_baseline_is_latest_and_followup_closest(pool: list[Candidate[None]]) -> None:
    baseline, followup = choose_time_points(pool, WINDOWS)
    in_baseline = [c for c in pool if -90 <= c.day <= 0]
    in_followup = [c for c in pool if 60 <= c.day <= 150]
    assert (baseline is None) == (not in_baseline)
    assert (followup is None) == (not in_followup)
    if baseline is not None:
        assert baseline in in_baseline and all(c.day <= baseline.day for c in in_baseline)
    if followup is not None:
        assert followup in in_followup
        assert all(abs(followup.day - 91) <= abs(c.day - 91) for c in in_followup)
        assert all(c.day >= followup.day for c in in_followup if abs(c.day - 91) == abs(followup.day - 91))
