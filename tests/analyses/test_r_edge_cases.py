"""Edge cases of ``stats.ols`` and ``stats.wilcoxon_signed_rank`` against R.

The expected values are ``reference/r_edge_cases.json``, written by ``reference/r_edge_cases.R`` (plain
``lm`` + ``summary`` + ``confint`` and ``wilcox.test(paired = TRUE)``; R 4.2.2). R is not needed to run these
tests.

- ``lm`` without residual degrees of freedom (complete cases ≤ coefficients) still gives the estimates of the
  exact fit and its R² (0 for an intercept-only fit); standard errors, p-values and CIs are NaN (None here);
  coefficients aliased for lack of rows (or by a constant column) are NA (None); a constant outcome has no R²
  (R: 0/0 = NaN).
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


@pytest.mark.parametrize("case", sorted(R["regression"]))
def test_ols_without_residual_degrees_of_freedom_matches_r(case: str) -> None:
    ref = R["regression"][case]
    assert ref["df_residual"] == 0
    outcome, rhs = (s.strip() for s in ref["formula"].split("~"))
    terms = [t.strip() for t in rhs.split("+")]
    res = ols(pd.DataFrame(ref["data"]), outcome, terms)  # R's data: the first complete rows of cohort40.csv
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


def test_ols_constant_outcome_has_no_r_squared() -> None:
    # R's mss / (mss + rss) is 0 / 0 here (R prints NaN or rounding noise); never -inf
    data = pd.DataFrame({"y": [3, 3, 3, 3, 3], "x": [21, 18, 7, 9, 30]})
    res = ols(data, "y", ["x"])
    assert res.r_squared is None
    assert close(res.terms["intercept"].estimate, 3.0) and close(res.terms["x"].estimate, 0.0)
