"""Tests of fhir_pts.analyses.stats against hand-computed values and the committed R fixture.

Independent references, in order of strength:
- hand computation inside the test (Greenwood / log-log formula written out, all 2^n sign assignments of the
  signed-rank statistic, closed forms of the Clopper–Pearson edges and of simple regression);
- ``reference/r_reference.json``, written by ``reference/reference_values.R`` from the CSV inputs next to it
  (R's survival, stats: see reference/README.md). R is not needed to run these tests.

Tolerance: 1e-9 relative (absolute 1e-12 near 0). The fixture holds 15 significant digits (jsonlite's
maximum), so the tolerance is met with margin; lifelines sums logs where R multiplies, a 1e-15 difference.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from fhir_pts.analyses import paired
from fhir_pts.analyses.api import CurvePoint
from fhir_pts.analyses.stats import (
    KaplanMeierEstimate,
    OlsResult,
    WilcoxonResult,
    clopper_pearson,
    kaplan_meier,
    ols,
    ols_formula,
    quartiles,
    reverse_km_median,
    wilcoxon_signed_rank,
)

REF = Path(__file__).parent / "reference"
R: dict[str, Any] = json.loads((REF / "r_reference.json").read_text())
REL = 1e-9
ABS = 1e-12
MONTH_DAYS = 30.4375


def close(actual: float | None, expected: float | None, rel: float = REL) -> bool:
    """Equal within ``rel`` (None only equals None)."""
    if expected is None or actual is None:
        return actual is None and expected is None
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=ABS)


def assert_close(actual: float | None, expected: float | None, what: str = "", rel: float = REL) -> None:
    assert close(actual, expected, rel), f"{what}: got {actual!r}, R/hand says {expected!r}"


def cohort40() -> pd.DataFrame:
    df = pd.read_csv(REF / "cohort40.csv", na_values=["NA"], keep_default_na=False)
    for c in ["age", "stented_segments", "villalta_baseline", "villalta_3m", "civiq20_baseline", "civiq20_3m"]:
        df[c] = df[c].astype("Int64")  # the cohort's nullable dtypes
    df["villalta_gain"] = df["villalta_baseline"] - df["villalta_3m"]
    df["civiq20_gain"] = df["civiq20_baseline"] - df["civiq20_3m"]
    df["age_twice"] = 2 * df["age"]
    return df


def km_case(case: str) -> tuple[list[float], list[bool]]:
    ref = R["km"][case]
    return [float(t) for t in ref["time"]], [bool(e) for e in ref["lost"]]


# ------------------------------------------------------------------------------------------------ quartiles


def test_quartiles_hand() -> None:
    # R type 7: h = (n - 1) p + 1 -> 1.75, 2.5, 3.25 for 1..4
    assert quartiles([4, 1, 3, 2]) == (1.75, 2.5, 3.25)
    assert quartiles([7]) == (7.0, 7.0, 7.0)


def test_quartiles_missing_and_empty() -> None:
    assert quartiles([1, None, 2, float("nan"), 3, 4]) == (1.75, 2.5, 3.25)
    assert quartiles(pd.array([1, pd.NA, 2, 3, 4], dtype="Int64")) == (1.75, 2.5, 3.25)
    assert quartiles([]) == (None, None, None)
    assert quartiles([None, float("nan")]) == (None, None, None)


@pytest.mark.parametrize("ref", R["quartiles"], ids=lambda r: r["name"])
def test_quartiles_match_r_type7(ref: dict[str, Any]) -> None:
    got = quartiles(ref["values"])
    for g, e, nm in zip(got, ref["q"], ("q1", "median", "q3"), strict=True):
        assert_close(g, e, nm)


# ------------------------------------------------------------------------------------------- Clopper–Pearson


@pytest.mark.parametrize("ref", R["binom"], ids=lambda r: f"{r['x']}/{r['n']}@{r['level']}")
def test_clopper_pearson_matches_r_binom_test(ref: dict[str, Any]) -> None:
    low, high = clopper_pearson(int(ref["x"]), int(ref["n"]), alpha=1 - ref["level"])
    assert_close(low, ref["ci"][0], "lower")
    assert_close(high, ref["ci"][1], "upper")


@pytest.mark.parametrize("n", [1, 2, 5, 42])
def test_clopper_pearson_edges_closed_form(n: int) -> None:
    # x = 0: (0, 1 - (alpha/2)^(1/n)); x = n: ((alpha/2)^(1/n), 1) -- exact 0 and 1, as R
    a2 = 0.025
    assert clopper_pearson(0, n) == (0.0, pytest.approx(1 - a2 ** (1 / n), rel=1e-12))
    assert clopper_pearson(n, n) == (pytest.approx(a2 ** (1 / n), rel=1e-12), 1.0)


def test_alpha_is_rs_one_minus_conf_level_bit_for_bit() -> None:
    # R computes with 1 - conf.level (0.050000000000000044 for 0.95), which moves a Clopper-Pearson bound by one
    # unit in the last place against alpha = 0.05 itself: alpha=0.05 gives R's bits, not statsmodels' 0.05 ones
    from statsmodels.stats.proportion import proportion_confint

    r_bounds = tuple(float(b) for b in proportion_confint(29, 42, alpha=1 - 0.95, method="beta"))
    assert r_bounds != tuple(float(b) for b in proportion_confint(29, 42, alpha=0.05, method="beta"))
    assert clopper_pearson(29, 42) == clopper_pearson(29, 42, alpha=0.05) == r_bounds


def test_clopper_pearson_41_of_42_paper_value() -> None:
    low, high = clopper_pearson(41, 42)
    assert round(low, 4) == 0.8743 and round(high, 4) == 0.9994  # the abstract's 41/42, R binom.test


def test_clopper_pearson_no_trials_and_invalid() -> None:
    assert clopper_pearson(0, 0) == (None, None)
    for x, n in [(3, 2), (-1, 4), (1, -1)]:
        with pytest.raises(ValueError):
            clopper_pearson(x, n)
    for alpha in (0.0, 1.0, -0.05):
        with pytest.raises(ValueError, match="alpha"):
            clopper_pearson(1, 2, alpha=alpha)


def test_a_confidence_level_where_alpha_goes_is_refused() -> None:
    """``level`` (0.95) became ``alpha`` (0.05) in the same place: an old positional call must fail, not give a
    5 % interval."""
    for call in (
        lambda: clopper_pearson(1, 2, 0.95),
        lambda: kaplan_meier([1.0, 2.0], [True, False], 0.95),
        lambda: paired.mean_difference([3.0, 5.0, 4.0], [1.0, 2.0, 2.5], 0.9),
        lambda: ols(pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0], "x": [1.0, 2.0, 3.0, 5.0]}), "y", ["x"], 0.95),
    ):
        with pytest.raises(ValueError, match="confidence level"):
            call()
    assert clopper_pearson(1, 2, 0.5) == clopper_pearson(1, 2, alpha=0.5)  # a 50 % interval is still allowed


# ---------------------------------------------------------------------------------------------- Kaplan–Meier


def loglog_ci(s: float, greenwood: float, alpha: float = 0.05) -> tuple[float, float]:
    """Hand formula of R's log-log band: exp(-exp(log(-log S) -/+ z * se / log S)), se = sqrt(Greenwood)."""
    z = sps.norm.ppf(1 - alpha / 2)
    c, w = math.log(-math.log(s)), z * math.sqrt(greenwood) / math.log(s)
    return math.exp(-math.exp(c - w)), math.exp(-math.exp(c + w))


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_km_hand_computed_seven_patients(alpha: float) -> None:
    # times 1+, 2, 2+, 3, 4, 5, 6+  (+ = censored). Risk sets and events written out by hand:
    steps = [(2.0, 6, 1), (3.0, 4, 1), (4.0, 3, 1), (5.0, 2, 1)]  # (time, n at risk, events)
    km = kaplan_meier([1, 2, 2, 3, 4, 5, 6], [False, True, False, True, True, True, False], alpha=alpha)
    assert (km.n, km.events, km.alpha) == (7, 4, alpha)
    assert km.timeline.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # every recorded time, censorings included
    s, gw = 1.0, 0.0
    for t, n, d in steps:
        s *= 1 - d / n
        gw += d / (n * (n - d))
        est, low, high = km.at(t)
        exp_low, exp_high = loglog_ci(s, gw, alpha)
        assert_close(est, s, f"S({t})")
        assert_close(low, exp_low, f"lower({t})")
        assert_close(high, exp_high, f"upper({t})")
        assert km.at(t + 0.5) == km.at(t)  # a step function, right-continuous
    assert km.at(5)[0] == pytest.approx(5 / 6 * 3 / 4 * 2 / 3 * 1 / 2)
    assert km.at(6) == km.at(5)  # censoring at 6: no step, still inside follow-up
    assert km.at(6.01) is None  # beyond the last follow-up time
    assert km.at(1) == (1.0, None, None)  # S = 1 at a recorded time: R gives NA bounds
    assert km.at(0.5) == (1.0, 1.0, 1.0)  # before the first recorded time: R's summary start row
    assert [km.at_risk(t) for t in (0, 1, 2, 2.5, 6, 7)] == [7, 7, 6, 4, 1, 0]
    assert km.median() == 4.0  # S(3) = 0.625, S(4) = 0.4167
    # reverse KM: events at 1, 2 (the censored one), 6; S_rev = 6/7, 5/7, ..., 0 at 6 -> median 6
    assert reverse_km_median([1, 2, 2, 3, 4, 5, 6], [False, True, False, True, True, True, False]) == 6.0


def test_km_curve_points() -> None:
    km = kaplan_meier([1, 2, 2, 3, 4, 5, 6], [False, True, False, True, True, True, False])
    curve = km.curve()
    assert all(isinstance(p, CurvePoint) for p in curve)
    assert [p.time_months for p in curve] == [0, 1, 2, 3, 4, 5, 6]
    assert [p.at_risk for p in curve] == [7, 7, 6, 4, 3, 2, 1]
    assert (curve[0].estimate, curve[0].ci_low, curve[0].ci_high) == (1.0, 1.0, 1.0)
    assert (curve[1].estimate, curve[1].ci_low, curve[1].ci_high) == (1.0, None, None)
    for p in curve[2:]:
        assert (p.estimate, p.ci_low, p.ci_high) == km.at(p.time_months)
        assert p.ci_low < p.estimate < p.ci_high


def test_km_time_zero_recorded_once() -> None:
    km = kaplan_meier([0, 0, 0, 1, 3], [True, False, False, True, False])
    curve = km.curve()
    assert [p.time_months for p in curve] == [0, 1, 3]
    assert curve[0].estimate == pytest.approx(4 / 5) and curve[0].at_risk == 5
    assert km.at(0)[0] == pytest.approx(4 / 5)  # day-0 events count at t = 0 (technical failure)


def test_km_reaching_zero_has_no_ci() -> None:
    km = kaplan_meier([1, 2, 2, 3], [True, True, True, True])
    assert km.at(3) == (0.0, None, None)  # S = 0: R gives NA (lifelines would say 0, 0)
    assert km.median() == 2.0


@pytest.mark.parametrize(
    ("times", "lost", "median"),
    [
        ([1, 2, 3, 4], [True, True, False, True], 3.0),  # S = 0.5 on [2, 4), drops at 4 -> midpoint
        ([1, 2, 3, 4], [True, True, False, False], 2.0),  # S = 0.5 to the end -> R's print: start of plateau
        ([1, 2, 3, 4, 5, 6], [True, True, True, False, False, True], 4.5),  # 5/6*4/5*3/4 = 0.5 in floating point
        ([1, 2, 3, 4, 5], [True, False, False, False, False], None),  # not reached
        ([1, 2, 3], [False, False, False], None),  # no event
    ],
)
def test_km_median_r_rule_hand(times: list[float], lost: list[bool], median: float | None) -> None:
    assert kaplan_meier(times, lost).median() == median


def test_km_empty() -> None:
    km = kaplan_meier([], [])
    assert isinstance(km, KaplanMeierEstimate)
    assert (km.n, km.events, km.curve(), km.median(), km.at(6), km.at_risk(0)) == (0, 0, [], None, None, 0)
    assert reverse_km_median([], []) is None


def test_km_accepts_nullable_pandas() -> None:
    t = pd.Series([1.5, 2.0, 3.0], dtype="Float64")
    e = pd.Series([True, False, True], dtype="boolean")
    assert kaplan_meier(t, e).at(2)[0] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("times", "lost"),
    [
        ([1, -1], [True, True]),
        ([1, float("nan")], [True, True]),
        ([1, 2], [True, None]),
        ([1, 2], [True]),
        ([1, 2], [True, 2]),
    ],
)
def test_km_rejects_bad_input(times: list[Any], lost: list[Any]) -> None:
    with pytest.raises(ValueError):
        kaplan_meier(times, lost)


def test_km_rejects_negative_query() -> None:
    with pytest.raises(ValueError):
        kaplan_meier([1, 2], [True, False]).at(-1)


def test_km_takes_lifelines_keywords() -> None:
    from lifelines import KaplanMeierFitter

    durations, event_observed = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0], [True, False, True, True, False, True]
    km = kaplan_meier(durations=durations, event_observed=event_observed, alpha=0.1)
    lifelines = KaplanMeierFitter(alpha=0.1).fit(durations=durations, event_observed=event_observed)
    assert km.timeline.tolist() == [1.0, 3.0, 4.0, 5.0, 9.0]  # R's fit$time; lifelines' timeline starts at 0
    assert lifelines.timeline.tolist() == [0.0, *km.timeline]
    assert km.survival.tolist() == lifelines.survival_function_.iloc[1:, 0].tolist()
    with pytest.raises(ValueError, match="event_observed"):
        kaplan_meier(durations=[1.0, 2.0], event_observed=[True])
    with pytest.raises(ValueError, match="alpha"):
        kaplan_meier([1.0], [True], alpha=0.0)


def _r_nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


@pytest.mark.parametrize("case", sorted(R["km"]))
def test_km_matches_r_survfit_loglog(case: str) -> None:
    ref = R["km"][case]
    times, lost = km_case(case)
    if case == "cohort40":
        assert times == pytest.approx(list(cohort40()["days"] / MONTH_DAYS), rel=1e-15)
    km = kaplan_meier(times, lost)
    assert (km.n, km.events) == (ref["n"], ref["events"])
    np.testing.assert_allclose(km.timeline, ref["curve_time"], rtol=REL)
    np.testing.assert_allclose(km.survival, ref["surv"], rtol=REL, atol=ABS)
    np.testing.assert_allclose(km.ci_low, [_r_nan(x) for x in ref["lower"]], rtol=REL, atol=ABS)
    np.testing.assert_allclose(km.ci_high, [_r_nan(x) for x in ref["upper"]], rtol=REL, atol=ABS)
    assert km.n_at_risk.tolist() == ref["n_risk"]
    assert km.n_events.tolist() == ref["n_event"]
    assert_close(km.median(), ref["median"], "median (print.survfit)")
    assert_close(reverse_km_median(times, lost), ref["reverse_median"], "reverse KM median")
    for q in ref["at"]:
        got = km.at(q["t"])
        if q.get("beyond"):
            assert got is None, f"t={q['t']} is beyond the last follow-up"
            continue
        assert got is not None
        assert_close(got[0], q["surv"], f"S({q['t']})")
        assert_close(got[1], q["lower"], f"lower({q['t']})")
        assert_close(got[2], q["upper"], f"upper({q['t']})")
        assert km.at_risk(q["t"]) == q["n_risk"], f"n.risk({q['t']})"


def test_km_fixture_exercises_the_edges() -> None:
    # guard against a fixture that silently stopped covering what the edge rules are about
    ref = R["km"]
    assert ref["plateau_end"]["median"] != ref["plateau_end"]["median_quantile"]  # print vs quantile rule
    assert ref["to_zero"]["surv"][-1] == 0 and ref["to_zero"]["lower"][-1] is None
    assert any(q.get("beyond") for q in ref["cohort40"]["at"])
    assert {q["t"] for q in ref["cohort40"]["at"]} >= {6, 12, 24, 36}


# -------------------------------------------------------------------------------------------------- Wilcoxon


def enumerated_exact_p(d: list[float]) -> tuple[float, float]:
    """V and the two-sided exact p by enumerating all 2^n sign assignments of the ranks (no ties assumed)."""
    n = len(d)
    order = sorted(range(n), key=lambda i: abs(d[i]))
    rank = {i: r + 1 for r, i in enumerate(order)}
    v = float(sum(rank[i] for i in range(n) if d[i] > 0))
    null = [
        sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s)
        for signs in itertools.product([False, True], repeat=n)
    ]
    total = len(null)
    p_low = sum(1 for w in null if w <= v) / total
    p_high = sum(1 for w in null if w >= v) / total
    return v, min(1.0, 2 * min(p_low, p_high))


@pytest.mark.parametrize(
    "d",
    [[3, -1, 4, 7, -2, 5, 9, 6, -8, 10], [1, 2, -3], [5], [1, 2, 3, 4, 5, 6, 7, 8], [-0.5, 1.5, -2.5, 3, 4.5, -6]],
)
def test_wilcoxon_exact_against_enumeration(d: list[float]) -> None:
    v, p = enumerated_exact_p(d)
    res = wilcoxon_signed_rank([10 + x for x in d], [10] * len(d))
    assert isinstance(res, WilcoxonResult)
    assert res.exact and res.method == "Wilcoxon signed rank exact test"
    assert res.n_nonzero == len(d)
    assert res.v == v
    assert_close(res.p_value, p, "exact p")


def test_wilcoxon_normal_approximation_hand() -> None:
    # d = 2, 2, 3 and one zero: ranks 1.5, 1.5, 3; V = 6; E = 3; var = 3*4*7/24 - (2^3 - 2)/48 = 3.375
    res = wilcoxon_signed_rank([12, 12, 13, 10], [10, 10, 10, 10])
    z = (6 - 3 - 0.5) / math.sqrt(3.375)
    assert (res.v, res.n_nonzero, res.exact) == (6.0, 3, False)
    assert res.method == "Wilcoxon signed rank test with continuity correction"
    assert_close(res.p_value, math.erfc(z / math.sqrt(2)), "p")


def test_wilcoxon_zero_or_tie_forces_normal() -> None:
    no_ties = [3, -1, 4, 7, -2]
    assert wilcoxon_signed_rank(no_ties, [0] * 5).exact
    assert not wilcoxon_signed_rank([*no_ties, 0], [0] * 6).exact  # a zero difference
    assert not wilcoxon_signed_rank([*no_ties, 3], [0] * 6).exact  # a tie
    assert not wilcoxon_signed_rank([*no_ties, -3], [0] * 6).exact  # a tie of |d| with opposite signs


def test_wilcoxon_exact_below_50_only() -> None:
    d49 = np.arange(1, 50) * np.where(np.arange(1, 50) % 3 == 0, -1, 1)
    d50 = np.arange(1, 51) * np.where(np.arange(1, 51) % 3 == 0, -1, 1)
    assert wilcoxon_signed_rank(d49, np.zeros(49)).exact
    assert not wilcoxon_signed_rank(d50, np.zeros(50)).exact


def test_wilcoxon_nothing_to_test() -> None:
    for x, y, v in [([], [], None), ([1, 2], [1, 2], 0.0), ([None], [3], None)]:
        res = wilcoxon_signed_rank(x, y)  # every difference zero: R's V = 0, p NaN; no pair: nothing
        assert (res.v, res.p_value, res.n_nonzero) == (v, None, 0)
    with pytest.raises(ValueError):
        wilcoxon_signed_rank([1, 2], [1])


def test_wilcoxon_drops_incomplete_pairs() -> None:
    full = wilcoxon_signed_rank([13, 9, 14, 17, 8], [10] * 5)
    with_na = wilcoxon_signed_rank(pd.array([13, 9, pd.NA, 14, 17, 8], dtype="Int64"), [10, 10, 10, 10, 10, 10])
    assert with_na == wilcoxon_signed_rank([13, 9, 14, 17, 8], [10] * 5) == full


@pytest.mark.parametrize("case", sorted(R["wilcoxon"]))
def test_wilcoxon_matches_r_wilcox_test(case: str) -> None:
    ref = R["wilcoxon"][case]
    res = wilcoxon_signed_rank(ref["baseline"], ref["followup"])
    assert res.method == ref["method"]
    assert res.exact == ("exact" in ref["method"])
    assert res.n_nonzero == ref["n_nonzero"]
    assert_close(res.v, ref["v"], "V")
    assert_close(res.p_value, ref["p"], "p")


def test_wilcoxon_fixture_covers_both_methods() -> None:
    methods = {r["method"] for r in R["wilcoxon"].values()}
    assert methods == {"Wilcoxon signed rank exact test", "Wilcoxon signed rank test with continuity correction"}


# ------------------------------------------------------------------------------------------------------- OLS


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_ols_simple_regression_hand(alpha: float) -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
    y = np.array([1.0, 3.0, 4.0, 7.5, 10.0])
    n = x.size
    sxx = float(((x - x.mean()) ** 2).sum())
    b = float(((x - x.mean()) * (y - y.mean())).sum()) / sxx
    a = y.mean() - b * x.mean()
    rss = float(((y - a - b * x) ** 2).sum())
    sigma2 = rss / (n - 2)
    se_b = math.sqrt(sigma2 / sxx)
    se_a = math.sqrt(sigma2 * (1 / n + x.mean() ** 2 / sxx))
    tq = sps.t.ppf(1 - alpha / 2, n - 2)
    r2 = 1 - rss / float(((y - y.mean()) ** 2).sum())
    res = ols(pd.DataFrame({"y": y, "x": x}), "y", ["x"], alpha=alpha)
    assert isinstance(res, OlsResult)
    assert (res.n, list(res.terms), res.formula) == (5, ["intercept", "x"], "y ~ x")
    assert_close(res.r_squared, r2, "R2")
    for name, est, se in [("intercept", a, se_a), ("x", b, se_b)]:
        term = res.terms[name]
        assert_close(term.estimate, est, f"{name} estimate")
        assert_close(term.std_error, se, f"{name} se")
        assert_close(term.ci_low, est - tq * se, f"{name} ci_low")
        assert_close(term.ci_high, est + tq * se, f"{name} ci_high")
        assert_close(term.p_value, 2 * sps.t.sf(abs(est / se), n - 2), f"{name} p")


def _check_lm(res: OlsResult, ref: dict[str, Any], ordered: bool = True) -> None:
    assert res.n == ref["n"]
    assert_close(res.r_squared, ref["r_squared"], "R2")
    if ordered:
        assert list(res.terms) == list(ref["terms"])
    else:  # patsy puts categorical terms before numeric ones; R keeps the formula's order
        assert sorted(res.terms) == sorted(ref["terms"])
    for name, exp in ref["terms"].items():
        got = res.terms[name]
        assert_close(got.estimate, exp["estimate"], f"{name} estimate")
        assert_close(got.std_error, exp["std_error"], f"{name} se")
        assert_close(got.p_value, exp["p"], f"{name} p")
        assert_close(got.ci_low, exp["ci_low"], f"{name} ci_low")
        assert_close(got.ci_high, exp["ci_high"], f"{name} ci_high")


@pytest.mark.parametrize(
    ("case", "outcome", "terms"),
    [
        ("villalta_gain", "villalta_gain", ["villalta_baseline", "civiq20_baseline", "age", "stented_segments"]),
        ("civiq20_gain", "civiq20_gain", ["villalta_baseline", "civiq20_baseline", "age", "stented_segments"]),
        ("aliased", "villalta_gain", ["villalta_baseline", "age", "age_twice"]),
    ],
)
def test_ols_matches_r_lm(case: str, outcome: str, terms: list[str]) -> None:
    res = ols(cohort40(), outcome, terms)
    _check_lm(res, R["regression"][case])
    assert res.formula == R["regression"][case]["formula"]


@pytest.mark.parametrize(
    ("case", "formula"),
    [
        ("villalta_gain", "villalta_gain ~ villalta_baseline + civiq20_baseline + age + stented_segments"),
        ("factor_sex", "villalta_gain ~ age + C(sex)"),
        ("no_intercept", "villalta_gain ~ villalta_baseline - 1"),
    ],
)
def test_ols_formula_matches_r_lm(case: str, formula: str) -> None:
    _check_lm(ols_formula(cohort40(), formula), R["regression"][case], ordered=case != "factor_sex")


def test_ols_fixture_has_an_aliased_term() -> None:
    assert R["regression"]["aliased"]["terms"]["age_twice"]["estimate"] is None


@pytest.mark.parametrize("rows", [0, 1, 3])
def test_ols_too_few_complete_cases(rows: int) -> None:
    # 3 rows, 3 parameters: no residual degrees of freedom. R still gives the estimates (values checked against
    # R in test_r_edge_cases.py); CI, p and SE are NaN there, None here. No row at all: everything None.
    data = cohort40().dropna().head(rows)
    res = ols(data, "villalta_gain", ["villalta_baseline", "age"])
    assert res.n == rows
    assert list(res.terms) == ["intercept", "villalta_baseline", "age"]
    assert all(t.p_value is None and t.ci_low is None and t.ci_high is None for t in res.terms.values())
    assert (res.r_squared is None) == (rows == 0)
    assert (res.terms["intercept"].estimate is None) == (rows == 0)


def test_ols_complete_cases_and_bad_columns() -> None:
    data = cohort40()
    res = ols(data, "villalta_gain", ["age"])
    assert res.n == int((data["villalta_gain"].notna() & data["age"].notna()).sum())
    with pytest.raises(ValueError):
        ols(data, "villalta_gain", ["no_such_column"])
    with pytest.raises(ValueError):
        ols(data, "villalta_gain", ["intercept"])


# ------------------------------------------------------------------------------- properties (hypothesis)

survival_data = st.lists(st.tuples(st.integers(min_value=0, max_value=12), st.booleans()), min_size=1, max_size=25).map(
    lambda rows: ([float(t) for t, _ in rows], [e for _, e in rows])
)


@settings(max_examples=200, deadline=None)
@given(survival_data)
def test_km_property_matches_product_limit_by_hand(data: tuple[list[float], list[bool]]) -> None:
    times, lost = data
    km = kaplan_meier(times, lost)
    s, gw = 1.0, 0.0
    for t in sorted(set(times)):
        n = sum(1 for x in times if x >= t)
        d = sum(1 for x, e in zip(times, lost, strict=True) if x == t and e)
        s *= 1 - d / n
        gw += d / (n * (n - d)) if n > d else 0.0
        est, low, high = km.at(t)
        assert_close(est, s, f"S({t})", rel=1e-12)
        if s in (0.0, 1.0) or est in (0.0, 1.0):
            assert (low, high) == (None, None)
        else:
            exp_low, exp_high = loglog_ci(s, gw)
            assert_close(low, exp_low, f"lower({t})")
            assert_close(high, exp_high, f"upper({t})")
        assert km.at_risk(t) == n
    assert km.at(max(times) + 0.5) is None
    assert km.events == sum(lost)
    med = km.median()
    if med is not None:  # R's rule: S has reached 0.5 (up to rounding) at the median
        assert km.at(med)[0] <= 0.5 + 1e-8


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=11, unique=True), st.data())
def test_wilcoxon_property_exact_equals_enumeration(magnitudes: list[int], data: st.DataObject) -> None:
    signs = data.draw(st.lists(st.sampled_from([-1, 1]), min_size=len(magnitudes), max_size=len(magnitudes)))
    d = [m * s for m, s in zip(magnitudes, signs, strict=True)]
    v, p = enumerated_exact_p(d)
    res = wilcoxon_signed_rank(d, [0] * len(d))
    assert res.exact and res.v == v
    assert_close(res.p_value, p, "exact p")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-6, max_value=6), min_size=1, max_size=60))
def test_wilcoxon_property_normal_equals_scipy_asymptotic(d: list[int]) -> None:
    # scipy's asymptotic test (zeros dropped, tie-corrected variance, continuity correction) is a second,
    # independent implementation of R's normal approximation
    res = wilcoxon_signed_rank(d, [0] * len(d))
    nonzero = [x for x in d if x != 0]
    if not nonzero:
        assert (res.v, res.p_value) == (0.0, None)  # R: V = 0, p NaN
        return
    assert res.v == sum(r for r, x in zip(sps.rankdata(np.abs(nonzero)), nonzero, strict=True) if x > 0)
    exact_expected = len(nonzero) < 50 and len(set(map(abs, nonzero))) == len(nonzero) and 0 not in d
    assert res.exact == exact_expected
    if not res.exact:
        ref = sps.wilcoxon(nonzero, zero_method="wilcox", correction=True, method="asymptotic")
        assert_close(res.p_value, float(ref.pvalue), "normal p")


def test_ols_formula_no_complete_case_with_categorical() -> None:
    data = cohort40().iloc[:0]
    res = ols_formula(data, "villalta_gain ~ age + C(sex)")
    assert (res.n, res.r_squared) == (0, None)
    assert set(res.terms) == {"intercept", "age", "C(sex)"}
    assert all(v is None for t in res.terms.values() for v in vars(t).values())


def test_ols_formula_unknown_variable_raises() -> None:
    with pytest.raises(Exception, match="no_such_variable"):
        ols_formula(cohort40(), "villalta_gain ~ no_such_variable")
