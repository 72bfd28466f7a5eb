"""OLS from n, XᵀX, Xᵀy, yᵀy equals ``stats.ols`` on the rows (R's lm), edge cases of the R fixture included."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fhir_pts.analyses.stats import OlsResult, ols, ols_design, ols_formula, ols_formula_design
from fhir_pts.pooling.aggregates import cross_products, merge
from fhir_pts.pooling.ols import ols_from_cross_products

REF = Path(__file__).parents[1] / "analyses" / "reference"
R: dict[str, Any] = json.loads((REF / "r_edge_cases.json").read_text())


def assert_same(a: OlsResult, b: OlsResult) -> None:
    assert a.n == b.n and list(a.terms) == list(b.terms)
    for x, y in [(a.r_squared, b.r_squared)] + [
        (getattr(a.terms[t], f), getattr(b.terms[t], f))
        for t in a.terms
        for f in ("estimate", "std_error", "p_value", "ci_low", "ci_high")
    ]:
        assert (x is None) == (y is None), (x, y)
        if x is not None:
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (x, y)


def from_rows(frame: pd.DataFrame, outcome: str, terms: list[str]) -> OlsResult:
    y, x, names, formula = ols_design(frame, outcome, terms)
    return ols_from_cross_products(cross_products("model", y, x, names, formula))


@pytest.mark.parametrize("case", sorted(R["regression"]))
def test_r_edge_cases(case: str) -> None:
    ref = R["regression"][case]
    outcome, rhs = (s.strip() for s in ref["formula"].split("~"))
    terms = [t.strip() for t in rhs.split("+")]
    frame = pd.DataFrame(ref["data"])
    assert_same(from_rows(frame, outcome, terms), ols(frame, outcome, terms))


@pytest.fixture(scope="module")
def cohort40() -> pd.DataFrame:
    frame = pd.read_csv(REF / "cohort40.csv")
    frame["gain"] = frame.villalta_baseline - frame.villalta_3m
    frame["double_age"] = frame.age * 2
    return frame


@pytest.mark.parametrize(
    "terms",
    [
        ["villalta_baseline", "civiq20_baseline", "age", "stented_segments"],
        ["age", "double_age", "stented_segments"],  # an aliased term (R: NA)
        [],
    ],
)
def test_cohort40_models_split_into_sites_and_summed(cohort40: pd.DataFrame, terms: list[str]) -> None:
    whole = ols(cohort40, "gain", terms)
    parts = np.array_split(np.arange(len(cohort40)), 3)
    sums = []
    for idx in parts:
        y, x, names, formula = ols_design(cohort40.iloc[idx], "gain", terms)
        sums.append(cross_products("model", y, x, names, formula))
    merged, exact = merge(sums)
    assert exact
    assert_same(ols_from_cross_products(merged), whole)


def test_a_formula_without_intercept(cohort40: pd.DataFrame) -> None:
    design = ols_formula_design(cohort40, "gain ~ age + stented_segments - 1")
    assert not isinstance(design, OlsResult)
    y, x, names, formula = design
    assert_same(ols_from_cross_products(cross_products("m", y, x, names, formula)), ols_formula(cohort40, formula))
