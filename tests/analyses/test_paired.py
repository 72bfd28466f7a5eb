"""Hodges–Lehmann estimate and CI beside the paired Wilcoxon test, and the t CI of the mean gain, against R 4.2.2
(``reference/hodges_lehmann.R``) and against a hand computation of the exact case."""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from fhir_pts.analyses.paired import hodges_lehmann, mean_difference, qsignrank

CASES = json.loads((Path(__file__).parent / "reference" / "hodges_lehmann.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_as_r_wilcox_test_conf_int(case: dict) -> None:
    result = hodges_lehmann(case["baseline"], case["followup"])
    tolerance = 1e-9 if case["method"].endswith("exact test") else 2e-4  # R's uniroot stops at tol = 1e-4
    assert result.method == ("exact" if case["method"].endswith("exact test") else "asymptotic")
    assert result.estimate == pytest.approx(case["estimate"], abs=tolerance)
    assert result.ci_low == pytest.approx(case["ci"][0], abs=tolerance)
    assert result.ci_high == pytest.approx(case["ci"][1], abs=tolerance)
    assert result.conf_level == pytest.approx(case["conf_level"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_mean_gain_ci_as_r_t_test(case: dict) -> None:
    result = mean_difference(case["baseline"], case["followup"])
    assert result.estimate == pytest.approx(case["mean"], rel=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(case["mean_ci"]), rel=1e-9)


def test_exact_case_by_hand() -> None:
    """The ?wilcox.test example by enumeration: Walsh averages, and the signed-rank quantile from all 2^9 signs."""
    x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    d = [a - b for a, b in zip(x, y, strict=True)]
    n = len(d)
    walsh = sorted((d[i] + d[j]) / 2 for i in range(n) for j in range(i, n))
    sums = [sum(k + 1 for k in range(n) if signs[k]) for signs in itertools.product([0, 1], repeat=n)]
    cdf = {q: sum(s <= q for s in sums) / 2**n for q in range(n * (n + 1) // 2 + 1)}
    qu = min(q for q, p in cdf.items() if p >= 0.025)
    assert qu == qsignrank(0.025, n) == 6
    result = hodges_lehmann(x, y)
    assert result.estimate == pytest.approx(statistics.median(walsh))
    assert (result.ci_low, result.ci_high) == pytest.approx((walsh[qu - 1], walsh[len(walsh) - qu]))


def _normal_p(d: np.ndarray) -> float:
    """Two-sided p of the signed-rank statistic by the normal approximation with continuity and tie correction
    (written out here, independently of the package), the statistic R's interval inverts."""
    from scipy.stats import norm, rankdata

    d = d[d != 0]
    n = d.size
    ranks = rankdata(np.abs(d))
    z = ranks[d > 0].sum() - n * (n + 1) / 4
    _, t = np.unique(ranks, return_counts=True)
    sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (t**3 - t).sum() / 48)
    return float(2 * norm.sf(abs((z - np.sign(z) * 0.5) / sigma)))


def test_asymptotic_interval_is_where_the_test_stops_rejecting() -> None:
    """The interval's definition: shifting the differences by a point just inside gives p ≥ 0.05, just outside
    p < 0.05 (normal approximation, as R's uniroot uses whatever the test itself used)."""
    case = next(c for c in CASES if c["name"] == "cohort40_villalta")
    d = np.array(case["baseline"], dtype=float) - np.array(case["followup"], dtype=float)
    d = d[d != 0]  # R drops the zero differences before it inverts the test
    result = hodges_lehmann(case["baseline"], case["followup"])
    assert result.ci_low is not None and result.ci_high is not None
    for bound, inward in ((result.ci_low, 0.01), (result.ci_high, -0.01)):
        assert _normal_p(d - (bound + inward)) >= 0.05 > _normal_p(d - (bound - inward))


def test_no_difference_and_one_pair() -> None:
    assert hodges_lehmann([3, 4], [3, 4]).estimate is None
    one = mean_difference([5], [2])
    assert one.estimate == 3 and one.ci_low is None
