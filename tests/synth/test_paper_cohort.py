"""The paper cohort, read back by the contract's rules, gives the abstract's figures (to its rounding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.regression.linear_model import RegressionResultsWrapper

from fhir_pts.synth.paper import paper_cohort_resources
from fhir_pts.synth.paper_table import PAPER_PATIENTS

from .reading import Derived, derive, read

MONTH = 30.4375


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    derived: list[Derived] = []
    for rec in read(paper_cohort_resources()).values():
        d = derive(rec)
        assert d is not None
        derived.append(d)
    rows = [vars(d) | {"v0": d.villalta[0], "v3": d.villalta[1], "c0": d.civiq[0], "c3": d.civiq[1]}
            for d in derived if d.villalta and d.civiq]  # fmt: skip
    assert len(rows) == len(derived)
    return pd.DataFrame(rows)


def test_deterministic() -> None:
    assert list(paper_cohort_resources()) == list(paper_cohort_resources())


def test_demographics(cohort: pd.DataFrame) -> None:
    assert len(cohort) == 42
    assert (cohort.gender == "female").sum() == 27 and (cohort.gender == "male").sum() == 15
    assert round(cohort.age.mean(), 1) == 47.3
    assert round(cohort.age.std(ddof=1), 1) == 17.0
    assert (cohort.age.min(), cohort.age.max()) == (22, 86)


def test_index_dates_within_study_period() -> None:
    dates = sorted(p.index_date for p in PAPER_PATIENTS)
    assert dates[0].startswith("2012-03") and dates[-1].startswith("2017-10")


def test_technical_success_and_patency(cohort: pd.DataFrame) -> None:
    assert cohort.technical_success.sum() == 41
    assert (~cohort.primary_lost).sum() == 29
    assert (~cohort.assisted_lost).sum() == 33
    assert (~cohort.secondary_lost).sum() == 37


def test_imaging_follow_up_quartiles(cohort: pd.DataFrame) -> None:
    q1, median, q3 = np.percentile(cohort.follow_up_days / MONTH, [25, 50, 75])
    assert (round(median, 1), round(q1, 1), round(q3, 1)) == (18.1, 9.7, 34.4)


def test_every_patient_has_recognisable_segments(cohort: pd.DataFrame) -> None:
    assert cohort.segments.between(1, 5).all()
    table = sorted(len(p.segment_names()) for p in PAPER_PATIENTS)
    assert sorted(cohort.segments) == table


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [("v0", "v3", ((10, 14, 19), (2, 5, 9))), ("c0", "c3", ((39, 57, 72), (24, 30, 50)))],
)
def test_scores_before_after(cohort: pd.DataFrame, before: str, after: str, expected: tuple) -> None:
    assert tuple(np.percentile(cohort[before], [25, 50, 75])) == expected[0]
    assert tuple(np.percentile(cohort[after], [25, 50, 75])) == expected[1]
    assert stats.wilcoxon(cohort[before], cohort[after]).pvalue < 1e-4


def _ols(cohort: pd.DataFrame, gain: pd.Series) -> RegressionResultsWrapper:
    x = sm.add_constant(cohort[["v0", "c0", "age", "segments"]].astype(float))
    return sm.OLS(gain.astype(float), x).fit()


def _rounded_ci(fit: RegressionResultsWrapper, term: str) -> tuple[float, float]:
    low, high = fit.conf_int().loc[term]
    return round(low, 2), round(high, 2)


def test_villalta_gain_regression(cohort: pd.DataFrame) -> None:
    """The abstract: baseline Villalta and CIVIQ-20 (0.07-0.20), age (0.04-0.19, P=0.002) and stenting expanse
    (0.97-5.65, P=0.006) independently related to Villalta gain, all P<0.0001 but age and expanse."""
    fit = _ols(cohort, cohort.v0 - cohort.v3)
    assert fit.nobs == 42
    assert fit.params.v0 > 0 and fit.pvalues.v0 < 1e-4  # the abstract's CI for it is inconsistent (see docs)
    assert _rounded_ci(fit, "c0") == (0.07, 0.20) and fit.pvalues.c0 < 1e-4
    assert _rounded_ci(fit, "age") == (0.04, 0.19) and round(fit.pvalues.age, 3) == 0.002
    # its CI and P cannot both hold at the abstract's rounding: P kept, CI near
    assert round(fit.pvalues.segments, 3) == 0.006 and fit.params.segments > 0
    low, high = fit.conf_int().loc["segments"]
    assert abs(low - 0.97) < 0.05 and abs(high - 5.65) < 0.5


def test_civiq_gain_regression(cohort: pd.DataFrame) -> None:
    """The abstract: baseline Villalta (0.89-2.23, P<0.0001) the single variable related to CIVIQ-20 gain."""
    fit = _ols(cohort, cohort.c0 - cohort.c3)
    assert _rounded_ci(fit, "v0") == (0.89, 2.23) and fit.pvalues.v0 < 1e-4
    assert (fit.pvalues[["c0", "age", "segments"]] > 0.05).all()


def test_technical_failure_has_day0_loss_and_tiny_gain(cohort: pd.DataFrame) -> None:
    failed = cohort[~cohort.technical_success].iloc[0]
    assert failed.primary_lost and failed.assisted_lost and failed.secondary_lost
    assert failed.v0 - failed.v3 <= 2


def test_every_resource_validates_with_r4b() -> None:
    import importlib

    for resource in paper_cohort_resources():
        kind = resource["resourceType"]
        getattr(importlib.import_module(f"fhir.resources.R4B.{kind.lower()}"), kind).model_validate(resource)


def test_no_major_complication_recorded() -> None:
    for resource in paper_cohort_resources():
        if resource["resourceType"] == "AdverseEvent":
            assert resource["seriousness"]["coding"][0]["code"] == "non-serious"
        for complication in resource.get("complication", []):
            assert "coding" not in complication
