"""Every measure id and statistic name of contract §4, exactly, from the built-in plugins (empty or not)."""

from __future__ import annotations

import pytest

from fhir_pts.plugin_manager import get_plugin_manager, run_analyses
from tests.analyses.cohort_frames import make_cohort, patency_row

KM = ("km_6m", "km_12m", "km_24m", "km_36m", "at_risk_6m", "at_risk_12m", "at_risk_24m", "at_risk_36m")
PATENCY = ("patients", "events", "patent_at_last_follow_up", "proportion_at_last_follow_up", *KM)
SCORES = ("n_pairs", "baseline_median", "baseline_q1", "baseline_q3", "followup_median", "followup_q1",
          "followup_q3", "gain_mean", "wilcoxon")  # fmt: skip
REGRESSION = ("n", "r_squared", "coef:intercept", "coef:baseline_villalta", "coef:baseline_civiq20", "coef:age",
              "coef:stented_segments")  # fmt: skip
#: contract §4, transcribed from the table
CONTRACT: dict[str, tuple[str, ...]] = {
    "cohort": ("patients", "female", "male", "age_mean", "age_sd", "age_min", "age_max"),
    "technical-success": ("numerator", "denominator", "proportion"),
    "major-complications": ("numerator", "denominator", "proportion"),
    "imaging-follow-up": ("median_months", "q1_months", "q3_months", "reverse_km_median_months"),
    "primary-patency": PATENCY,
    "primary-assisted-patency": PATENCY,
    "secondary-patency": PATENCY,
    "villalta": SCORES,
    "civiq20": SCORES,
    "villalta-gain-regression": REGRESSION,
    "civiq20-gain-regression": REGRESSION,
}
BUILTINS = ("descriptive", "patency", "scores", "regression")


def small_cohort():  # type: ignore[no-untyped-def]
    rows = []
    for i in range(8):
        rows.append(
            {"sex": "female" if i % 3 else "male", "age": 30 + (7 * i) % 11 * 4, "technical_success": i != 0,
             "major_complication": 0, "stented_segments": 1 + i % 3, "imaging_follow_up_months": 2.0 + 4 * i,
             **patency_row(2.0 + 4 * i, i in (0, 3), "primary_patency"),
             **patency_row(2.0 + 4 * i, i == 0, "primary_assisted_patency"),
             **patency_row(2.0 + 4 * i, i == 0, "secondary_patency"),
             "baseline_villalta": 10 + i, "followup_villalta": 4 + i % 3, "villalta_gain": 6 + i - i % 3,
             "baseline_villalta_class": "moderate", "followup_villalta_class": "none",
             "baseline_civiq20": 50.0 + (i * i) % 7, "followup_civiq20": 30.0 + i, "civiq20_gain": 20.0 + 2 * i}
        )  # fmt: skip
    return make_cohort(*rows)


@pytest.mark.parametrize("cohort_factory", [make_cohort, small_cohort], ids=["empty", "eight-patients"])
def test_contract_measures_and_statistics_exactly(cohort_factory) -> None:  # type: ignore[no-untyped-def]
    outcomes = run_analyses(get_plugin_manager(allow=BUILTINS), cohort_factory())
    assert [o.info.id for o in outcomes] == list(CONTRACT)
    for outcome in outcomes:
        assert outcome.ok, outcome.error
        names = [s.name for s in outcome.result.statistics]
        assert tuple(names[: len(CONTRACT[outcome.info.id])]) == CONTRACT[outcome.info.id], outcome.info.id
        assert len(set(names)) == len(names)
        assert all(s.n is not None for s in outcome.result.statistics)


def test_non_empty_cohort_fills_every_contract_value() -> None:
    outcomes = run_analyses(get_plugin_manager(allow=BUILTINS), small_cohort())
    beyond_follow_up = {"km_36m"}  # the longest time is 30 months: empty beyond the last follow-up
    for outcome in outcomes:
        for name in CONTRACT[outcome.info.id]:
            value = outcome.result.statistic(name).value
            assert (value is None) == (name in beyond_follow_up), (outcome.info.id, name)


def test_regression_terms_parameter_through_the_host() -> None:
    [outcome] = run_analyses(
        get_plugin_manager(allow=BUILTINS),
        small_cohort(),
        ["villalta-gain-regression"],
        {"villalta-gain-regression": {"terms": ["age"]}},
    )
    assert [s.name for s in outcome.result.statistics] == ["n", "r_squared", "coef:intercept", "coef:age", "excluded"]
