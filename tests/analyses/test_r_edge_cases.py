"""Edge cases of ``stats.ols`` and ``stats.wilcoxon_signed_rank`` against R.

The expected values are ``reference/r_edge_cases.json``, written by ``reference/r_edge_cases.R`` (plain
``lm`` + ``summary`` + ``confint`` and ``wilcox.test(paired = TRUE)``; R 4.2.2). R is not needed to run these
tests.

- ``lm`` without residual degrees of freedom (complete cases ≤ coefficients) still gives the estimates of the
  exact fit and its R² (0 for an intercept-only fit); standard errors, p-values and CIs are NaN (None here);
  coefficients aliased for lack of rows (or by a constant column) are NA (None).
- ``wilcox.test`` with every difference zero gives V = 0 and p = NaN.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fhir_pts.analyses.stats import ols, wilcoxon_signed_rank

REF = Path(__file__).parent / "reference"
R: dict[str, Any] = json.loads((REF / "r_edge_cases.json").read_text())


def close(actual: float | None, expected: float | None) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def complete_cohort40() -> pd.DataFrame:
    df = pd.read_csv(REF / "cohort40.csv", na_values=["NA"], keep_default_na=False)
    for c in ["age", "stented_segments", "villalta_baseline", "villalta_3m", "civiq20_baseline", "civiq20_3m"]:
        df[c] = df[c].astype("Int64")
    df = df.dropna()  # R: cohort[complete.cases(cohort), ]
    df["villalta_gain"] = df["villalta_baseline"] - df["villalta_3m"]
    return df


@pytest.mark.parametrize("case", sorted(R["regression"]))
def test_ols_without_residual_degrees_of_freedom_matches_r(case: str) -> None:
    ref = R["regression"][case]
    assert ref["df_residual"] == 0
    outcome, rhs = (s.strip() for s in ref["formula"].split("~"))
    terms = [t.strip() for t in rhs.split("+")]
    res = ols(complete_cohort40().head(ref["rows"]), outcome, terms)
    assert res.n == ref["n"]
    assert close(res.r_squared, ref["r_squared"]), (res.r_squared, ref["r_squared"])
    assert list(res.terms) == list(ref["terms"])
    for name, exp in ref["terms"].items():
        got = res.terms[name]
        for attr, key in [
            ("estimate", "estimate"),
            ("std_error", "std_error"),
            ("p_value", "p"),
            ("ci_low", "ci_low"),
            ("ci_high", "ci_high"),
        ]:
            assert close(getattr(got, attr), exp[key]), (case, name, attr, getattr(got, attr), exp[key])


@pytest.mark.parametrize("case", sorted(R["wilcoxon"]))
def test_wilcoxon_all_differences_zero_matches_r(case: str) -> None:
    ref = R["wilcoxon"][case]
    res = wilcoxon_signed_rank(ref["baseline"], ref["followup"])
    assert (res.v, res.p_value, res.n_nonzero) == (ref["v"], ref["p"], 0)
    assert res.method == ref["method"]
