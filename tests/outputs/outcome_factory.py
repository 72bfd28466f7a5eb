"""Factories of analysis outcomes and small cohorts for the output tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome, AnalysisResult, CurvePoint, Statistic
from fhir_pts.cohort.model import Cohort
from fhir_pts.problems import Problem
from fhir_pts.testing import cohort_from_rows


def cohort(*rows: Mapping[str, Any], problems: Sequence[Problem] = (), period: bool = True) -> Cohort:
    return cohort_from_rows(
        rows,
        problems=list(problems),
        period_start=dt.date(2012, 3, 5) if period else None,
        period_end=dt.date(2018, 9, 30) if period else None,
    )


def proportion_outcome(successes: int = 41, trials: int = 42, measure: str = "technical-success") -> AnalysisOutcome:
    info = AnalysisInfo(
        id=measure, title="Technical success", description="d", scoring="proportion", improvement_notation="increase"
    )
    result = AnalysisResult(
        statistics=[
            Statistic("numerator", float(successes), n=trials),
            Statistic("denominator", float(trials), n=trials),
            Statistic("proportion", successes / trials, 0.8743, 0.9994, n=trials, unit="1"),
        ],
        populations={
            "initial-population": trials,
            "denominator": trials,
            "denominator-exclusion": 0,
            "numerator": successes,
        },
        score="proportion",
        notes=["a note"],
    )
    return AnalysisOutcome(info=info, plugin="descriptive", result=result)


def survival_outcome() -> AnalysisOutcome:
    info = AnalysisInfo(id="primary-patency", title="Primary patency", description="d", scoring="proportion",
                        improvement_notation="increase")  # fmt: skip
    curve = [
        CurvePoint(0.0, 1.0, 1.0, 1.0, 4),
        CurvePoint(2.0, 0.75, 0.1941, 0.9603, 4),
        CurvePoint(10.0, 0.375, None, None, 1),
    ]
    result = AnalysisResult(
        statistics=[
            Statistic("patients", 4.0, n=4),
            Statistic("proportion_at_last_follow_up", 0.5, 0.0676, 0.9324, n=4, unit="1"),
            Statistic("km_6m", 0.375, 0.0139, 0.7912, n=4, unit="1"),
            Statistic("km_12m", None, n=4, unit="1"),
        ],
        populations={"initial-population": 4, "denominator": 4, "numerator": 2},
        score="proportion_at_last_follow_up",
        curves={"kaplan-meier": curve},
    )
    return AnalysisOutcome(info=info, plugin="patency", result=result)


def scores_outcome() -> AnalysisOutcome:
    info = AnalysisInfo(id="villalta", title="Villalta", description="d", scoring="continuous-variable",
                        improvement_notation="decrease")  # fmt: skip
    result = AnalysisResult(
        statistics=[
            Statistic("n_pairs", 42.0, n=42),
            Statistic("followup_median", 5.0, n=42, unit="{score}"),
            Statistic("wilcoxon", 903.0, p_value=1.234567890123e-08, n=42),
        ],
        populations={"initial-population": 42, "measure-population": 42, "measure-observation": 42},
        score="followup_median",
    )
    return AnalysisOutcome(info=info, plugin="scores", result=result)


def cohort_outcome() -> AnalysisOutcome:
    info = AnalysisInfo(id="cohort", title="Cohort", description="d")
    result = AnalysisResult(
        statistics=[Statistic("patients", 3.0, n=3), Statistic("age_mean", 1 / 3, n=3, unit="a")],
        populations={"initial-population": 3},
    )
    return AnalysisOutcome(info=info, plugin="descriptive", result=result)


def failed_outcome() -> AnalysisOutcome:
    info = AnalysisInfo(id="civiq20", title="CIVIQ-20", description="d", scoring="continuous-variable",
                        improvement_notation="decrease")  # fmt: skip
    return AnalysisOutcome(info=info, plugin="scores", error="scores: ValueError: boom")


def all_kinds() -> list[AnalysisOutcome]:
    return [cohort_outcome(), proportion_outcome(), survival_outcome(), scores_outcome(), failed_outcome()]
