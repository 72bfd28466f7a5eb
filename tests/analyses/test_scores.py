"""The ``villalta`` and ``civiq20`` analyses on hand-built cohorts (complete pairs, R's paired Wilcoxon)."""

from __future__ import annotations

import math

import pytest

from fhir_pts.analyses import scores
from fhir_pts.analyses.api import AnalysisResult
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from tests.analyses.cohort_frames import make_cohort

CONTRACT_STATS = (
    "n_pairs",
    "baseline_median",
    "baseline_q1",
    "baseline_q3",
    "followup_median",
    "followup_q1",
    "followup_q3",
    "gain_mean",
    "wilcoxon",
)


def values(result: AnalysisResult) -> dict[str, float | None]:
    return {s.name: s.value for s in result.statistics}


def villalta_rows() -> list[dict]:
    """Pairs (14, 5), (10, 2), (19, 9); one baseline only, one 3-month only."""
    return [
        {"baseline_villalta": 14, "followup_villalta": 5, "baseline_villalta_class": "moderate",
         "followup_villalta_class": "mild"},
        {"baseline_villalta": 10, "followup_villalta": 2, "baseline_villalta_class": "moderate",
         "followup_villalta_class": "none"},
        {"baseline_villalta": 19, "followup_villalta": 9, "baseline_villalta_class": "severe",
         "followup_villalta_class": "mild"},
        {"baseline_villalta": 8, "baseline_villalta_class": "mild"},
        {"followup_villalta": 3, "followup_villalta_class": "none"},
    ]  # fmt: skip


def test_villalta_complete_pairs_hand_computed() -> None:
    result = scores.paired_scores(make_cohort(*villalta_rows()), "villalta", with_classes=True)
    got = values(result)
    assert [s.name for s in result.statistics][: len(CONTRACT_STATS)] == list(CONTRACT_STATS)
    assert got["n_pairs"] == 3
    # type 7 quartiles of 10, 14, 19 and of 2, 5, 9
    assert (got["baseline_q1"], got["baseline_median"], got["baseline_q3"]) == pytest.approx((12.0, 14.0, 16.5))
    assert (got["followup_q1"], got["followup_median"], got["followup_q3"]) == pytest.approx((3.5, 5.0, 7.0))
    assert got["gain_mean"] == pytest.approx(9.0)  # gains 9, 8, 10
    w = result.statistic("wilcoxon")
    assert w.value == 6.0  # all three gains positive: V = 1 + 2 + 3
    assert w.p_value == pytest.approx(0.25)  # exact: 2 * P(V >= 6) = 2 / 8
    assert w.n == 3
    assert got["excluded"] == 2
    assert (got["baseline_class_moderate"], got["baseline_class_severe"], got["baseline_class_mild"]) == (2, 1, 0)
    assert (got["followup_class_mild"], got["followup_class_none"], got["followup_class_severe"]) == (2, 1, 0)
    assert any("1 baseline only, 1 3-month only, 0 neither" in n for n in result.notes)
    assert result.populations["measure-population-exclusion"] == 2
    assert result.score == "followup_median"


def test_zero_difference_dropped_and_normal_approximation() -> None:
    rows = [
        {"baseline_civiq20": 50.0, "followup_civiq20": 50.0},
        {"baseline_civiq20": 60.0, "followup_civiq20": 52.0},
        {"baseline_civiq20": 44.5, "followup_civiq20": 40.5},
    ]
    result = scores.paired_scores(make_cohort(*rows), "civiq20")
    w = result.statistic("wilcoxon")
    # non-zero gains 8, 4 -> ranks 2, 1, V = 3; n = 2 with a zero dropped: normal approximation, continuity
    assert w.value == 3.0
    z = (3 - 2 * 3 / 4 - 0.5) / math.sqrt(2 * 3 * 5 / 24)
    assert w.p_value == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(z / math.sqrt(2)))), rel=1e-9)
    assert values(result)["wilcoxon_n_nonzero"] == 2
    assert values(result)["gain_mean"] == pytest.approx(4.0)
    assert "baseline_class_none" not in values(result)


@pytest.mark.parametrize("info", scores.ANALYSES, ids=lambda i: i.id)
def test_empty_cohort_gives_every_row(info) -> None:  # type: ignore[no-untyped-def]
    result = scores.fhir_pts_run_analysis(info, make_cohort(), {})
    got = values(result)
    for name in CONTRACT_STATS:
        assert name in got
        assert got[name] == (0 if name == "n_pairs" else None), name
    assert result.statistic("wilcoxon").p_value is None


def test_hook_dispatch() -> None:
    infos = scores.fhir_pts_describe_analyses(list(BUILTIN_INSTRUMENTS))
    assert [i.id for i in infos] == ["villalta", "civiq20"]
    assert all(i.improvement_notation == "decrease" for i in infos)
    villalta = scores.fhir_pts_run_analysis(infos[0], make_cohort(*villalta_rows()), {})
    assert values(villalta)["baseline_class_severe"] == 1
