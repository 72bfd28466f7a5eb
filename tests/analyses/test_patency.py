"""The patency and imaging follow-up analyses on hand-built cohorts, against hand-computed Kaplan–Meier."""

from __future__ import annotations

import math

import pytest

from fhir_pts.analyses import patency
from fhir_pts.analyses.api import AnalysisResult
from tests.analyses.cohort_frames import make_cohort, patency_row

PATENCY_STATS = (
    "patients",
    "events",
    "patent_at_last_follow_up",
    "proportion_at_last_follow_up",
    "km_6m",
    "km_12m",
    "km_24m",
    "km_36m",
    "at_risk_6m",
    "at_risk_12m",
    "at_risk_24m",
    "at_risk_36m",
)
IMAGING_STATS = ("median_months", "q1_months", "q3_months", "reverse_km_median_months")
Z975 = 1.959963984540054


def values(result: AnalysisResult) -> dict[str, float | None]:
    return {s.name: s.value for s in result.statistics}


def four_patients(prefix: str = "primary_patency") -> list[dict]:
    """Times 2 (lost), 4 (censored), 6 (lost), 10 (censored) months."""
    return [patency_row(2.0, True, prefix), patency_row(4.0, False, prefix), patency_row(6.0, True, prefix),
            patency_row(10.0, False, prefix)]  # fmt: skip


def test_primary_patency_hand_computed_kaplan_meier() -> None:
    result = patency.patency(make_cohort(*four_patients()), "primary_patency")
    got = values(result)
    assert [s.name for s in result.statistics][: len(PATENCY_STATS)] == list(PATENCY_STATS)
    assert (got["patients"], got["events"], got["patent_at_last_follow_up"]) == (4, 2, 2)
    crude = result.statistic("proportion_at_last_follow_up")
    assert crude.value == 0.5
    assert (crude.ci_low, crude.ci_high) == pytest.approx((0.06758599, 0.93241401), abs=1e-8)  # binom.test(2, 4)
    # S(2) = 3/4; S(6) = 3/4 * 1/2 = 0.375 (the event at exactly 6 months counts)
    km6 = result.statistic("km_6m")
    assert km6.value == pytest.approx(0.375)
    # log-log CI with Greenwood: var = 1/(4*3) + 1/(2*1); se(log(-log S)) = sqrt(var) / |log S|
    s = 0.375
    se = math.sqrt(1 / 12 + 1 / 2) / abs(math.log(s))
    assert km6.ci_low == pytest.approx(s ** math.exp(Z975 * se), rel=1e-6)
    assert km6.ci_high == pytest.approx(s ** math.exp(-Z975 * se), rel=1e-6)
    assert km6.n == 4
    # beyond the last follow-up time (10 months): empty
    for t in (12, 24, 36):
        assert got[f"km_{t}m"] is None
        assert result.statistic(f"km_{t}m").ci_low is None
    assert (got["at_risk_6m"], got["at_risk_12m"], got["at_risk_24m"], got["at_risk_36m"]) == (2, 0, 0, 0)
    assert got["km_median_months"] == 6.0
    assert result.populations == {"initial-population": 4, "denominator": 4, "denominator-exclusion": 0,
                                  "numerator": 2}  # fmt: skip
    assert result.score == "proportion_at_last_follow_up"
    curve = result.curves["kaplan-meier"]
    assert [p.time_months for p in curve] == [0.0, 2.0, 4.0, 6.0, 10.0]
    assert [p.estimate for p in curve] == pytest.approx([1.0, 0.75, 0.75, 0.375, 0.375], abs=1e-12)
    assert [p.at_risk for p in curve] == [4, 4, 3, 2, 1]


def test_each_definition_reads_its_own_columns() -> None:
    rows = [
        {**patency_row(7.0, True, "primary_patency"), **patency_row(7.0, False, "primary_assisted_patency"),
         **patency_row(7.0, False, "secondary_patency")},
        {**patency_row(8.0, False, "primary_patency"), **patency_row(8.0, False, "primary_assisted_patency"),
         **patency_row(8.0, False, "secondary_patency")},
    ]  # fmt: skip
    cohort = make_cohort(*rows)
    events = {mid: values(patency.fhir_pts_run_analysis(info, cohort, {}))["events"]
              for mid, info in ((i.id, i) for i in patency.PATENCY_ANALYSES)}  # fmt: skip
    assert events == {"primary-patency": 1, "primary-assisted-patency": 0, "secondary-patency": 0}


def test_technical_failure_lost_at_day_zero() -> None:
    cohort = make_cohort(patency_row(0.0, True), patency_row(12.0, False))
    result = patency.patency(cohort, "primary_patency")
    got = values(result)
    assert got["km_6m"] == 0.5
    assert got["km_12m"] == 0.5
    assert got["km_24m"] is None
    assert got["at_risk_6m"] == 1
    assert got["at_risk_12m"] == 1  # time >= 12


def test_patient_without_time_is_counted_not_dropped() -> None:
    cohort = make_cohort(*four_patients(), patency_row(None, None))
    result = patency.patency(cohort, "primary_patency")
    got = values(result)
    assert got["patients"] == 5
    assert got["excluded"] == 1
    assert result.statistic("events").n == 4
    assert result.populations["denominator-exclusion"] == 1
    assert any("1 of 5 patients excluded" in n for n in result.notes)


def test_imaging_follow_up_quartiles_and_reverse_km_median() -> None:
    rows = [
        {**r, "imaging_follow_up_months": m}
        for r, m in zip(four_patients("secondary_patency"), (1.0, 2.0, 3.0, 10.0), strict=True)
    ]
    result = patency.imaging_follow_up(make_cohort(*rows))
    got = values(result)
    # R quantile type 7 of 1, 2, 3, 10
    assert (got["q1_months"], got["median_months"], got["q3_months"]) == pytest.approx((1.75, 2.5, 4.75))
    # reverse KM: censorings at 4 and 10 are the events: S(4) = 2/3, S(10) = 0 -> median 10
    assert got["reverse_km_median_months"] == 10.0
    assert result.score == "median_months"
    assert result.populations["measure-observation"] == 4


@pytest.mark.parametrize("info", patency.ANALYSES, ids=lambda i: i.id)
def test_empty_cohort_gives_every_row(info) -> None:  # type: ignore[no-untyped-def]
    result = patency.fhir_pts_run_analysis(info, make_cohort(), {})
    got = values(result)
    names = IMAGING_STATS if info.id == "imaging-follow-up" else PATENCY_STATS
    for name in names:
        assert name in got
        is_count = name in {"patients", "events", "patent_at_last_follow_up"} or name.startswith("at_risk")
        assert got[name] == (0 if is_count else None), name


def test_describes_contract_ids() -> None:
    assert [i.id for i in patency.fhir_pts_describe_analyses()] == [
        "imaging-follow-up",
        "primary-patency",
        "primary-assisted-patency",
        "secondary-patency",
    ]
