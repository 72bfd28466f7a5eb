"""The gain regressions on hand-built cohorts: hand-computed simple regression, complete cases, empty rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fhir_pts.analyses import regression
from fhir_pts.analyses.api import AnalysisResult
from tests.analyses.cohort_frames import make_cohort

CONTRACT_STATS = (
    "n",
    "r_squared",
    "coef:intercept",
    "coef:baseline_villalta",
    "coef:baseline_civiq20",
    "coef:age",
    "coef:stented_segments",
)
T975_DF2 = 4.302652729749464  # qt(0.975, 2)


def values(result: AnalysisResult) -> dict[str, float | None]:
    return {s.name: s.value for s in result.statistics}


def simple_rows() -> list[dict]:
    # age 1..4, gain 2, 4, 5, 8: slope 9.5 / 5 = 1.9, intercept 0, SSE 0.7, SST 18.75
    return [{"age": x, "villalta_gain": y} for x, y in ((1, 2), (2, 4), (3, 5), (4, 8))]


@pytest.mark.parametrize("how", ["terms", "formula"])
def test_simple_regression_hand_computed(how: str) -> None:
    cohort = make_cohort(*simple_rows(), {"age": 5})  # the last has no gain: excluded
    if how == "terms":
        result = regression.gain_regression(cohort, "villalta_gain", ["age"])
    else:
        result = regression.gain_regression(cohort, "villalta_gain", formula="villalta_gain ~ age")
    got = values(result)
    assert got["n"] == 4
    assert got["excluded"] == 1
    assert got["r_squared"] == pytest.approx(1 - 0.7 / 18.75)
    slope = result.statistic("coef:age")
    se = math.sqrt(0.35 / 5)  # sigma^2 = SSE / (n - 2); Sxx = 5
    t = 1.9 / se
    assert slope.value == pytest.approx(1.9)
    assert (slope.ci_low, slope.ci_high) == pytest.approx((1.9 - T975_DF2 * se, 1.9 + T975_DF2 * se))
    assert slope.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2))  # two-sided t test, 2 df
    assert slope.n == 4
    intercept = result.statistic("coef:intercept")
    assert intercept.value == pytest.approx(0.0, abs=1e-12)
    se0 = math.sqrt(0.35 * (1 / 4 + 2.5**2 / 5))
    assert intercept.ci_high == pytest.approx(T975_DF2 * se0)


def four_term_rows() -> list[dict]:
    rng = np.random.default_rng(7)
    rows = []
    for _ in range(12):
        bv, bc, age, seg = (
            int(rng.integers(5, 25)),
            float(rng.integers(30, 90)),
            int(rng.integers(20, 80)),
            int(rng.integers(1, 5)),
        )
        gain = 0.6 * bv + 0.1 * bc + 0.05 * age + 1.5 * seg - 8 + float(rng.normal(0, 1))
        rows.append({"baseline_villalta": bv, "baseline_civiq20": bc, "age": age, "stented_segments": seg,
                     "villalta_gain": round(gain), "civiq20_gain": round(gain * 3, 1)})  # fmt: skip
    return rows


def test_default_model_matches_least_squares_on_complete_cases() -> None:
    rows = four_term_rows()
    cohort = make_cohort(*rows, {**rows[0], "stented_segments": None})
    info = regression.VILLALTA_GAIN_REGRESSION
    result = regression.fhir_pts_run_analysis(info, cohort, info.default_parameters)
    got = values(result)
    assert [s.name for s in result.statistics][: len(CONTRACT_STATS)] == list(CONTRACT_STATS)
    assert (got["n"], got["excluded"]) == (12, 1)
    x = np.array([[1, r["baseline_villalta"], r["baseline_civiq20"], r["age"], r["stented_segments"]] for r in rows],
                 dtype=float)  # fmt: skip
    y = np.array([r["villalta_gain"] for r in rows], dtype=float)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert [got[n] for n in CONTRACT_STATS[2:]] == pytest.approx(list(beta), rel=1e-9, abs=1e-9)
    residuals = y - x @ beta
    assert got["r_squared"] == pytest.approx(1 - residuals @ residuals / np.sum((y - y.mean()) ** 2))


def test_civiq_model_uses_its_own_outcome() -> None:
    rows = four_term_rows()
    info = regression.CIVIQ20_GAIN_REGRESSION
    result = regression.fhir_pts_run_analysis(info, make_cohort(*rows), info.default_parameters)
    assert "civiq20_gain" in result.notes[0]
    assert result.statistic("n").value == 12


def test_too_few_cases_still_gives_every_row() -> None:
    # 4 cases for 5 coefficients: as R's lm, the exact fit of the first 4 (R² = 1), the last term aliased (NA),
    # and no CI or p-value (no residual degrees of freedom; R's NaN)
    rows = four_term_rows()[:4]
    result = regression.gain_regression(make_cohort(*rows), "villalta_gain")
    got = values(result)
    assert got["n"] == 4
    assert got["r_squared"] == pytest.approx(1.0)
    assert got["coef:stented_segments"] is None
    assert all(got[name] is not None for name in CONTRACT_STATS[2:-1])
    for s in result.statistics:
        if s.name.startswith("coef:"):
            assert (s.ci_low, s.ci_high, s.p_value) == (None, None, None)
    assert any("not estimable" in n for n in result.notes)


@pytest.mark.parametrize("info", regression.ANALYSES, ids=lambda i: i.id)
def test_empty_cohort_gives_every_row(info) -> None:  # type: ignore[no-untyped-def]
    result = regression.fhir_pts_run_analysis(info, make_cohort(), info.default_parameters)
    got = values(result)
    for name in CONTRACT_STATS:
        assert got[name] == (0 if name == "n" else None), name


def test_terms_as_comma_separated_text() -> None:
    rows = four_term_rows()
    as_text = regression.gain_regression(make_cohort(*rows), "villalta_gain", "age, stented_segments")
    as_list = regression.gain_regression(make_cohort(*rows), "villalta_gain", ["age", "stented_segments"])
    assert [s.name for s in as_text.statistics] == ["n", "r_squared", "coef:intercept", "coef:age",
                                                    "coef:stented_segments", "excluded"]  # fmt: skip
    assert as_text.statistics == as_list.statistics


def test_unknown_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="not in data"):
        regression.gain_regression(make_cohort(*simple_rows()), "villalta_gain", ["no_such_column"])
