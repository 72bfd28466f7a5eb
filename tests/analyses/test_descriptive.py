"""The ``cohort``, ``technical-success`` and ``major-complications`` analyses on hand-built cohorts."""

from __future__ import annotations

import pytest

from fhir_pts.analyses import descriptive
from fhir_pts.analyses.api import AnalysisResult
from tests.analyses.cohort_frames import make_cohort

COHORT_STATS = ("patients", "female", "male", "age_mean", "age_sd", "age_min", "age_max")
PROPORTION_STATS = ("numerator", "denominator", "proportion")


def values(result: AnalysisResult) -> dict[str, float | None]:
    return {s.name: s.value for s in result.statistics}


def test_cohort_three_patients_mean_40_sd_10() -> None:
    cohort = make_cohort({"sex": "female", "age": 30}, {"sex": "female", "age": 40}, {"sex": "male", "age": 50})
    result = descriptive.cohort_demographics(cohort)
    got = values(result)
    assert [s.name for s in result.statistics][: len(COHORT_STATS)] == list(COHORT_STATS)
    assert got["patients"] == 3
    assert got["female"] == 2
    assert got["male"] == 1
    assert got["age_mean"] == pytest.approx(40.0, abs=1e-12)
    assert got["age_sd"] == pytest.approx(10.0, abs=1e-12)  # sample SD: sqrt((100 + 0 + 100) / 2)
    assert (got["age_min"], got["age_max"]) == (30, 50)
    assert result.statistic("age_mean").n == 3
    assert result.populations == {"initial-population": 3}


def test_cohort_counts_unknown_sex_and_missing_age() -> None:
    cohort = make_cohort({"sex": "female", "age": 20}, {"sex": "other", "age": 31}, {"sex": None, "age": None})
    result = descriptive.cohort_demographics(cohort)
    got = values(result)
    assert (got["patients"], got["female"], got["male"], got["sex_other_or_unknown"]) == (3, 1, 0, 2)
    assert got["age_mean"] == pytest.approx(25.5)
    assert got["age_sd"] == pytest.approx(7.778174593052023)  # sqrt(2 * 5.5**2 / 1)
    assert result.statistic("age_mean").n == 2
    assert got["age_missing"] == 1
    assert any("1 of 3 patients excluded" in n for n in result.notes)


def test_cohort_single_age_has_no_sd() -> None:
    result = descriptive.cohort_demographics(make_cohort({"sex": "male", "age": 61}))
    assert values(result)["age_sd"] is None
    assert values(result)["age_mean"] == 61


def test_technical_success_unknown_outcome_left_out_and_counted() -> None:
    cohort = make_cohort({"technical_success": True}, {"technical_success": True}, {"technical_success": False}, {})
    result = descriptive.technical_success(cohort)
    got = values(result)
    assert (got["numerator"], got["denominator"], got["outcome_unknown"]) == (2, 3, 1)
    prop = result.statistic("proportion")
    assert prop.value == pytest.approx(2 / 3)
    # R: binom.test(2, 3)$conf.int
    assert prop.ci_low == pytest.approx(0.09429932, abs=1e-8)
    assert prop.ci_high == pytest.approx(0.99159624, abs=1e-8)
    assert prop.n == 3
    assert result.populations == {
        "initial-population": 4,
        "denominator": 4,
        "denominator-exclusion": 1,
        "numerator": 2,
    }
    assert result.score == "proportion"


def test_technical_success_all_successful_upper_bound_is_one() -> None:
    result = descriptive.technical_success(make_cohort(*[{"technical_success": True}] * 3))
    prop = result.statistic("proportion")
    assert prop.value == 1.0
    assert prop.ci_high == 1.0
    assert prop.ci_low == pytest.approx(0.2924018, abs=1e-7)  # R: binom.test(3, 3): (1 - 0.975)^(1/3)


def test_major_complications_denominator_is_every_patient() -> None:
    cohort = make_cohort(
        {"major_complication": 0, "technical_success": None},
        {"major_complication": 1},
        {"major_complication": 0},
        {"major_complication": 0},
    )
    result = descriptive.major_complications(cohort)
    got = values(result)
    assert (got["numerator"], got["denominator"]) == (1, 4)
    prop = result.statistic("proportion")
    assert prop.value == 0.25
    assert prop.ci_low == pytest.approx(0.006309463, abs=1e-9)  # R: binom.test(1, 4)
    assert prop.ci_high == pytest.approx(0.805879550, abs=1e-9)
    assert result.populations["denominator-exclusion"] == 0


def test_major_complications_none_lower_bound_is_zero() -> None:
    result = descriptive.major_complications(make_cohort(*[{"major_complication": 0}] * 42))
    prop = result.statistic("proportion")
    assert (prop.value, prop.ci_low) == (0.0, 0.0)
    assert prop.ci_high == pytest.approx(1 - 0.025 ** (1 / 42), abs=1e-12)


@pytest.mark.parametrize(
    ("runner", "names"),
    [
        (descriptive.cohort_demographics, COHORT_STATS),
        (descriptive.technical_success, PROPORTION_STATS),
        (descriptive.major_complications, PROPORTION_STATS),
    ],
)
def test_empty_cohort_gives_every_row(runner, names) -> None:  # type: ignore[no-untyped-def]
    result = runner(make_cohort())
    got = values(result)
    for name in names:
        assert name in got
    counts = {"patients", "female", "male", "numerator", "denominator"}
    for name in names:
        assert got[name] == (0 if name in counts else None), name


def test_hooks_describe_and_dispatch_only_own_ids() -> None:
    infos = descriptive.fhir_pts_describe_analyses()
    assert [i.id for i in infos] == ["cohort", "technical-success", "major-complications"]
    cohort = make_cohort({"sex": "female", "age": 30})
    assert descriptive.fhir_pts_run_analysis(infos[0], cohort, {}) is not None
    other = type(infos[0])(id="villalta", title="t", description="d")
    assert descriptive.fhir_pts_run_analysis(other, cohort, {}) is None
