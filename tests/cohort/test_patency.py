"""Patency of one patient (contract §2): one hand-computed case per rule, and the ordering invariant."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts.cohort.patency import (
    Finding,
    PatencyOutcome,
    Reintervention,
    derive_patency,
    reintervention_reason,
)


def outcome(primary: tuple[int, bool], assisted: tuple[int, bool], secondary: tuple[int, bool], follow_up: int):  # type: ignore[no-untyped-def]
    return PatencyOutcome(*primary, *assisted, *secondary, follow_up)


def test_no_finding_after_day_0_is_censored_at_day_0() -> None:
    assert derive_patency(True, [], []) == outcome((0, False), (0, False), (0, False), 0)


def test_patent_throughout_is_censored_at_the_last_finding() -> None:
    result = derive_patency(True, [Finding(180, "patent"), Finding(30, "patent")], [])
    assert result == outcome((180, False), (180, False), (180, False), 180)


def test_stenosis_finding_ends_primary_only() -> None:
    result = derive_patency(True, [Finding(30, "patent"), Finding(90, "stenosis"), Finding(200, "patent")], [])
    assert result == outcome((90, True), (200, False), (200, False), 200)


def test_reintervention_for_stenosis_ends_primary_only() -> None:
    # primary-assisted patency: a stenosed, still open stent treated before occlusion
    result = derive_patency(
        True, [Finding(60, "stenosis"), Finding(300, "patent")], [Reintervention(75, reason_code="stenosis")]
    )
    assert result == outcome((60, True), (300, False), (300, False), 300)


def test_occlusion_never_reopened_ends_all_three_at_the_occlusion() -> None:
    result = derive_patency(True, [Finding(100, "occluded"), Finding(300, "patent")], [])
    assert result == outcome((100, True), (100, True), (100, True), 300)


def test_occlusion_reopened_keeps_secondary() -> None:
    result = derive_patency(True, [Finding(100, "occluded"), Finding(200, "patent")], [Reintervention(110)])
    assert result == outcome((100, True), (100, True), (200, False), 200)


def test_failed_reopening_loses_secondary_at_the_occlusion() -> None:
    result = derive_patency(
        True, [Finding(100, "occluded"), Finding(200, "occluded")], [Reintervention(110, failed=True)]
    )
    assert result == outcome((100, True), (100, True), (100, True), 200)


def test_failed_then_successful_reopening_keeps_secondary() -> None:
    result = derive_patency(
        True,
        [Finding(100, "occluded"), Finding(400, "patent")],
        [Reintervention(110, failed=True), Reintervention(150)],
    )
    assert result == outcome((100, True), (100, True), (400, False), 400)


def test_reopening_on_the_day_of_the_occlusion_counts() -> None:
    result = derive_patency(True, [Finding(100, "occluded"), Finding(200, "patent")], [Reintervention(100)])
    assert result == outcome((100, True), (100, True), (200, False), 200)


def test_a_reopening_before_the_occlusion_does_not_reopen_it() -> None:
    result = derive_patency(
        True, [Finding(50, "stenosis"), Finding(100, "occluded"), Finding(200, "patent")], [Reintervention(60)]
    )
    assert result == outcome((50, True), (100, True), (100, True), 200)


def test_second_occlusion_never_reopened_ends_secondary_there() -> None:
    result = derive_patency(
        True,
        [Finding(100, "occluded"), Finding(200, "patent"), Finding(300, "occluded"), Finding(360, "occluded")],
        [Reintervention(110)],
    )
    assert result == outcome((100, True), (100, True), (300, True), 360)


def test_reintervention_for_occlusion_is_an_occlusion_on_its_day() -> None:
    # successful: the occlusion is reopened by the same reintervention
    result = derive_patency(
        True, [Finding(60, "patent"), Finding(200, "patent")], [Reintervention(120, reason_code="occlusion")]
    )
    assert result == outcome((120, True), (120, True), (200, False), 200)
    # failed: the occlusion is not reopened
    result = derive_patency(
        True,
        [Finding(60, "patent"), Finding(200, "patent")],
        [Reintervention(120, failed=True, reason_code="occlusion")],
    )
    assert result == outcome((120, True), (120, True), (120, True), 200)


def test_reintervention_after_the_last_finding_is_an_event_on_its_own_day() -> None:
    # event time is the reintervention's day (150), not the last finding (90); the others stay censored at 90
    result = derive_patency(True, [Finding(60, "patent"), Finding(90, "patent")], [Reintervention(150)])
    assert result == outcome((150, True), (90, False), (90, False), 90)


def test_reintervention_without_any_imaging_is_still_an_event() -> None:
    result = derive_patency(True, [], [Reintervention(40, failed=True, reason_code="occlusion")])
    assert result == outcome((40, True), (40, True), (40, True), 0)


def test_technical_failure_loses_all_three_at_day_0_whatever_follows() -> None:
    result = derive_patency(False, [Finding(30, "patent"), Finding(400, "patent")], [Reintervention(50)])
    assert result == outcome((0, True), (0, True), (0, True), 400)
    assert derive_patency(False, [], []) == outcome((0, True), (0, True), (0, True), 0)


def test_unknown_technical_outcome_is_not_a_failure() -> None:
    findings = [Finding(30, "patent"), Finding(90, "stenosis")]
    assert derive_patency(None, findings, []) == derive_patency(True, findings, [])


def test_referenced_observation_gives_the_reason() -> None:
    # reasonReference to an occluded finding, failed → occlusion at day 70, never reopened
    result = derive_patency(
        True,
        [Finding(30, "patent"), Finding(60, "stenosis"), Finding(100, "patent")],
        [Reintervention(70, failed=True, referenced_status="occluded")],
    )
    assert result == outcome((60, True), (70, True), (70, True), 100)


def test_reintervention_reason_resolution_order() -> None:
    findings = [Finding(50, "stenosis"), Finding(80, "occluded"), Finding(120, "patent")]
    # 1. reasonCode wins over everything
    assert reintervention_reason(
        Reintervention(100, reason_code="stenosis", referenced_status="occluded"), findings
    ) == ("stenosis")
    # 2. then the referenced Observation's status
    assert reintervention_reason(Reintervention(100, referenced_status="stenosis"), findings) == "stenosis"
    assert reintervention_reason(Reintervention(60, referenced_status="occluded"), findings) == "occlusion"
    # 3. then the latest finding on or before it
    assert reintervention_reason(Reintervention(100), findings) == "occlusion"  # latest before: day 80 occluded
    assert reintervention_reason(Reintervention(80), findings) == "occlusion"  # same day counts
    assert reintervention_reason(Reintervention(79), findings) == "stenosis"  # day 50 stenosis
    assert reintervention_reason(Reintervention(120), findings) == "stenosis"  # day 120 patent → not occlusion
    # 4. no finding on or before it → stenosis
    assert reintervention_reason(Reintervention(40), findings) == "stenosis"


def test_reason_fallback_two_findings_the_same_day_occluded_wins() -> None:
    for findings in (
        [Finding(50, "patent"), Finding(50, "occluded")],
        [Finding(50, "occluded"), Finding(50, "patent")],
    ):
        assert reintervention_reason(Reintervention(60), findings) == "occlusion"


def test_reason_from_the_latest_occluded_finding_makes_an_occlusion() -> None:
    # day 80 occluded is itself an occlusion (assisted lost 80); reintervention at 90 for it failed, never
    # reopened: secondary lost at the first never-reopened occlusion, day 80
    result = derive_patency(
        True, [Finding(80, "occluded"), Finding(150, "occluded")], [Reintervention(90, failed=True)]
    )
    assert result == outcome((80, True), (80, True), (80, True), 150)


@pytest.mark.parametrize("bad", [Finding(0, "patent"), Reintervention(-3)])
def test_inputs_on_or_before_day_0_are_rejected(bad: Finding | Reintervention) -> None:
    findings = [bad] if isinstance(bad, Finding) else []
    reinterventions = [bad] if isinstance(bad, Reintervention) else []
    with pytest.raises(ValueError, match="after day 0"):
        derive_patency(True, findings, reinterventions)  # type: ignore[arg-type]


def test_outcome_rejects_unordered_loss_times() -> None:
    with pytest.raises(ValueError, match="ordered"):
        PatencyOutcome(100, True, 50, True, 200, False, 200)  # assisted lost before primary
    with pytest.raises(ValueError, match="ordered"):
        PatencyOutcome(10, False, 50, False, 30, True, 50)  # secondary lost, primary not
    with pytest.raises(ValueError, match=">= 0"):
        PatencyOutcome(-1, True, 0, True, 0, True, 0)


findings_st = st.lists(
    st.builds(Finding, st.integers(1, 1500), st.sampled_from(["patent", "stenosis", "occluded"])), max_size=8
)
reinterventions_st = st.lists(
    st.builds(
        Reintervention,
        st.integers(1, 1500),
        st.booleans(),
        st.sampled_from([None, "stenosis", "occlusion"]),
        st.sampled_from([None, "patent", "stenosis", "occluded"]),
    ),
    max_size=4,
)


@given(st.sampled_from([True, False, None]), findings_st, reinterventions_st)
def test_loss_times_are_ordered_primary_assisted_secondary(
    technical_success: bool | None, findings: list[Finding], reinterventions: list[Reintervention]
) -> None:
    result = derive_patency(technical_success, findings, reinterventions)

    def loss(days: int, lost: bool) -> float:
        return days if lost else math.inf

    primary = loss(result.primary_days, result.primary_lost)
    assisted = loss(result.primary_assisted_days, result.primary_assisted_lost)
    secondary = loss(result.secondary_days, result.secondary_lost)
    assert primary <= assisted <= secondary
    last = max((f.day for f in findings), default=0)
    assert result.imaging_follow_up_days == last
    for days, lost in (
        (result.primary_days, result.primary_lost),
        (result.primary_assisted_days, result.primary_assisted_lost),
        (result.secondary_days, result.secondary_lost),
    ):
        if not lost:
            assert days == last  # censored at the last finding
    if technical_success is False:
        assert (primary, assisted, secondary) == (0, 0, 0)


def test_worked_example_of_docs_cohort_md() -> None:
    findings = [Finding(90, "stenosis"), Finding(200, "occluded"), Finding(400, "patent")]
    assert derive_patency(True, findings, [Reintervention(100), Reintervention(210)]) == outcome(
        (90, True), (200, True), (400, False), 400
    )
    assert derive_patency(True, findings, [Reintervention(100), Reintervention(210, failed=True)]) == outcome(
        (90, True), (200, True), (200, True), 400
    )
