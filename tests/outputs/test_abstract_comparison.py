"""The demo's comparison with the published abstract: rounding at the abstract's precision, flags, notes."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome, AnalysisResult, Statistic
from fhir_pts.outputs import abstract_comparison as ac

Stat = tuple[str, float | None] | tuple[str, float | None, float | None, float | None, float | None]


def outcome(measure: str, *stats: Stat) -> AnalysisOutcome:
    statistics = [Statistic(s[0], *s[1:]) for s in stats]  # type: ignore[arg-type]
    return AnalysisOutcome(
        AnalysisInfo(id=measure, title=measure, description=""), "builtin", AnalysisResult(statistics=statistics)
    )


def paper_like() -> list[AnalysisOutcome]:
    """Numbers as a faithful reproduction would give them (hand-chosen, within the abstract's rounding)."""
    vg, cg = "villalta-gain-regression", "civiq20-gain-regression"
    return [
        outcome("cohort", ("patients", 42), ("female", 27), ("male", 15), ("age_mean", 47.2619), ("age_sd", 16.93),
                ("age_min", 22), ("age_max", 86)),
        outcome("technical-success", ("numerator", 41), ("denominator", 42), ("proportion", 41 / 42)),
        outcome("major-complications", ("numerator", 0), ("denominator", 42), ("proportion", 0.0)),
        outcome("imaging-follow-up", ("median_months", 18.1), ("q1_months", 9.65), ("q3_months", 34.4)),
        outcome("primary-patency", ("patients", 42), ("patent_at_last_follow_up", 29),
                ("proportion_at_last_follow_up", 29 / 42)),
        outcome("primary-assisted-patency", ("patients", 42), ("patent_at_last_follow_up", 33),
                ("proportion_at_last_follow_up", 33 / 42)),
        outcome("secondary-patency", ("patients", 42), ("patent_at_last_follow_up", 37),
                ("proportion_at_last_follow_up", 37 / 42)),
        outcome("villalta", ("baseline_median", 14), ("baseline_q1", 10), ("baseline_q3", 19),
                ("followup_median", 5), ("followup_q1", 2), ("followup_q3", 9), ("wilcoxon", 861, None, None, 3e-8)),
        outcome("civiq20", ("baseline_median", 57), ("baseline_q1", 39.25), ("baseline_q3", 72),
                ("followup_median", 30), ("followup_q1", 24), ("followup_q3", 50), ("wilcoxon", 900, None, None, 2e-5)),
        outcome(vg, ("coef:baseline_villalta", 0.75, 0.5, 1.0, 1e-6), ("coef:baseline_civiq20", 0.13, 0.07, 0.20, 5e-5),
                ("coef:age", 0.11, 0.04, 0.19, 0.0024), ("coef:stented_segments", 3.31, 0.97, 5.65, 0.0061)),
        outcome(cg, ("coef:baseline_villalta", 1.56, 0.89, 2.23, 1e-5), ("coef:baseline_civiq20", 0.1, -0.1, 0.3, 0.4),
                ("coef:age", 0.05, -0.2, 0.3, 0.7), ("coef:stented_segments", 1.0, -2.0, 4.0, 0.051)),
    ]  # fmt: skip


def by_figure(rows: list[ac.ComparisonRow]) -> dict[str, ac.ComparisonRow]:
    return {r.figure: r for r in rows}


def test_round_half_up_as_papers_do() -> None:
    assert ac.round_half_up(47.25, 1) == Decimal("47.3")  # banker's rounding would give 47.2
    assert ac.round_half_up(0.5, 0) == Decimal("1")
    assert ac.round_half_up(-7.805, 2) == Decimal("-7.81")


def test_faithful_numbers_agree_except_the_abstracts_own_inconsistencies() -> None:
    rows = by_figure(ac.comparison_rows(paper_like()))
    assert rows["Patients"].agrees is True
    assert rows["Age, mean (years)"].ours == "47.3" and rows["Age, mean (years)"].agrees is True
    assert rows["Age, SD (years)"].agrees is True  # 16.93 -> 17
    assert rows["Technical success"].ours == "41/42" and rows["Technical success"].agrees is True
    assert rows["Technical success (%)"].ours == "97.6" and rows["Technical success (%)"].agrees is True
    assert rows["Imaging follow-up, median (IQR) months"].ours == "18.1 (9.7–34.4)"  # 9.65 rounds half up
    assert rows["Imaging follow-up, median (IQR) months"].agrees is True
    civiq = rows["CIVIQ-20 baseline, median (IQR)"]  # q1 39.25 is 39 at the abstract's 0 decimals
    assert (civiq.ours, civiq.agrees) == ("57 (39–72)", True)
    assert rows["Villalta baseline vs 3 months, Wilcoxon"].agrees is True
    assert rows["CIVIQ-20 baseline vs 3 months, Wilcoxon"].agrees is True
    # the abstract's 66.7 % is not 29/42: reported, not bent
    primary = rows["Primary patency at last follow-up (%)"]
    assert (primary.abstract, primary.ours, primary.agrees) == ("66.7", "69.0", False)
    assert "29/42 is 69.0 %" in primary.note
    assert rows["Primary patency at last follow-up"].agrees is True
    assert rows["Secondary patency at last follow-up (%)"].agrees is True
    # regression: sign and significance pattern, CI separately
    bv = rows["Villalta gain ~ baseline Villalta: sign and significance"]
    assert bv.agrees is True and "includes 0" in bv.note
    assert rows["Villalta gain ~ baseline Villalta: 95 % CI"].agrees is False
    assert rows["Villalta gain ~ age: 95 % CI"].agrees is True
    assert "yes" in rows["Villalta gain ~ age: sign and significance"].note  # 0.0024 -> 0.002
    assert rows["CIVIQ-20 gain ~ baseline Villalta: 95 % CI"].agrees is True
    assert rows["CIVIQ-20 gain ~ stenting expanse: sign and significance"].agrees is True  # p 0.051 >= 0.05


def test_differences_are_flagged() -> None:
    outcomes = paper_like()
    outcomes[0] = outcome("cohort", ("patients", 42), ("female", 26), ("male", 16), ("age_mean", 47.35))
    outcomes[9] = outcome("villalta-gain-regression", ("coef:age", -0.11, -0.19, -0.04, 0.0024))
    rows = by_figure(ac.comparison_rows(outcomes))
    assert rows["Women"].agrees is False and rows["Women"].check == "DIFFERS"
    assert rows["Age, mean (years)"].ours == "47.4" and rows["Age, mean (years)"].agrees is False
    assert rows["Villalta gain ~ age: sign and significance"].agrees is False  # wrong sign
    assert rows["Age, SD (years)"].agrees is None and rows["Age, SD (years)"].check == "n/a"


def test_missing_analyses_cannot_be_compared() -> None:
    rows = ac.comparison_rows([])
    assert rows and all(r.agrees is None for r in rows)
    assert all(r.ours in {"—", "—/—", "— (———)", "— (—–—)", "— to —"} for r in rows), {r.ours for r in rows}


def test_p_threshold() -> None:
    outcomes = paper_like()
    outcomes[7] = outcome("villalta", ("wilcoxon", 861, None, None, 0.00012))
    row = by_figure(ac.comparison_rows(outcomes))["Villalta baseline vs 3 months, Wilcoxon"]
    assert (row.ours, row.agrees) == ("P=0.00012", False)


def test_format_and_csv(tmp_path: Path) -> None:
    rows = ac.comparison_rows(paper_like())
    text = ac.format_comparison(rows)
    lines = text.splitlines()
    assert lines[0].startswith("Figure")
    assert lines[1].startswith("------")
    assert any("29/42 is 69.0 %" in line and "DIFFERS" in line for line in lines)
    differ = sum(r.agrees is False for r in rows)
    agree = len(rows) - differ
    assert (
        lines[-1] == f"{len(rows)} figures: {agree} agree at the abstract's precision, {differ} differ, 0 not computed."
    )
    path = ac.write_comparison_csv(tmp_path / "abstract-comparison.csv", rows)
    with path.open(newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == list(ac.COMPARISON_COLUMNS)
    assert len(read) == len(rows)
    assert read[0] == {"figure": "Patients", "measure": "cohort", "statistic": "patients", "abstract": "42",
                       "ours": "42", "check": "ok", "note": ""}  # fmt: skip


@pytest.mark.parametrize("figure", ["Villalta 3 months, median (IQR)", "CIVIQ-20 3 months, median (IQR)"])
def test_followup_rows_present(figure: str) -> None:
    assert by_figure(ac.comparison_rows(paper_like()))[figure].agrees is True
