"""Built-in analyses ``cohort``, ``technical-success`` and ``major-complications`` (contract §4).

A plugin of the same hooks as a third-party one, registered by import as ``descriptive``
(:data:`fhir_pts.plugin_manager.BUILTIN_PLUGINS`).

- ``cohort``: ``patients``, ``female``, ``male``, ``age_mean``, ``age_sd`` (sample SD, ddof = 1),
  ``age_min``, ``age_max`` (+ ``sex_other_or_unknown``, ``age_missing``).
- ``technical-success``: ``numerator`` (success), ``denominator`` (patients whose outcome is known),
  ``proportion`` with the 95 % Clopper–Pearson CI (+ ``outcome_unknown``). Unknown outcomes are a
  ``denominator-exclusion`` population, never guessed.
- ``major-complications``: ``numerator``, ``denominator`` (every patient with an index procedure),
  ``proportion`` with the 95 % Clopper–Pearson CI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fhir_pts.analyses._common import as_float, column, count, excluded_note
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.hookspecs import hookimpl

if TYPE_CHECKING:  # numpy, pandas and the statistics libraries are imported where used (listing stays fast)
    from fhir_pts.cohort.model import Cohort

COHORT = AnalysisInfo(
    id="cohort",
    title="Cohort demographics",
    description="Patients with an index stenting procedure: number, sex, age at the index procedure (years).",
    scoring="cohort",
)
TECHNICAL_SUCCESS = AnalysisInfo(
    id="technical-success",
    title="Immediate technical success",
    description="Patients whose index procedure succeeded, among those whose outcome is recorded "
    "(95 % Clopper-Pearson CI).",
    scoring="proportion",
    improvement_notation="increase",
)
MAJOR_COMPLICATIONS = AnalysisInfo(
    id="major-complications",
    title="Major complications of the index procedure",
    description="Patients with a major complication of the index procedure, among every patient with an index "
    "procedure (95 % Clopper-Pearson CI).",
    scoring="proportion",
    improvement_notation="decrease",
)
ANALYSES: tuple[AnalysisInfo, ...] = (COHORT, TECHNICAL_SUCCESS, MAJOR_COMPLICATIONS)


def cohort_demographics(cohort: Cohort) -> AnalysisResult:
    """Number of patients, sex counts and age summary (mean, sample SD, min, max) of the cohort.

    Age statistics are over the patients whose age is known (their ``n``); the others are counted in
    ``age_missing``. ``age_sd`` needs two ages.
    """
    import numpy as np

    frame = cohort.patients
    total = len(frame)
    sex = column(frame, "sex").astype("string")
    female = int((sex == "female").fillna(False).sum())
    male = int((sex == "male").fillna(False).sum())
    ages = as_float(column(frame, "age"))
    ages = ages[~np.isnan(ages)]
    n_age = int(ages.size)
    mean = float(np.mean(ages)) if n_age else None
    sd = float(np.std(ages, ddof=1)) if n_age >= 2 else None
    statistics = [
        count("patients", total, n=total),
        count("female", female, n=total),
        count("male", male, n=total),
        Statistic("age_mean", mean, n=n_age, unit="a"),
        Statistic("age_sd", sd, n=n_age, unit="a"),
        Statistic("age_min", float(ages.min()) if n_age else None, n=n_age, unit="a"),
        Statistic("age_max", float(ages.max()) if n_age else None, n=n_age, unit="a"),
        count("sex_other_or_unknown", total - female - male, n=total),
        count("age_missing", total - n_age, n=total),
    ]
    notes = excluded_note(total - n_age, total, "age unknown (left out of the age statistics)")
    from fhir_pts.analyses import aggregates as agg

    aggregates = [
        agg.count("patients", total, n=total),
        agg.count("female", female, n=total),
        agg.count("male", male, n=total),
        agg.moments("age", ages, unit="a", yields={r: f"age_{r}" for r in ("mean", "sd", "min", "max")}),
        agg.count("sex_other_or_unknown", total - female - male, n=total),
        agg.count("age_missing", total - n_age, n=total),
    ]
    return AnalysisResult(
        statistics=statistics, populations={"initial-population": total}, notes=notes, aggregates=aggregates
    )


def proportion_statistics(successes: int, trials: int) -> list[Statistic]:
    """``numerator``, ``denominator`` and ``proportion`` (95 % Clopper–Pearson CI), each with ``n`` = trials."""
    from fhir_pts.analyses import stats

    low, high = stats.clopper_pearson(successes, trials)
    return [
        count("numerator", successes, n=trials),
        count("denominator", trials, n=trials),
        Statistic("proportion", successes / trials if trials else None, low, high, n=trials, unit="1"),
    ]


def technical_success(cohort: Cohort) -> AnalysisResult:
    """Technical success among the patients whose index-procedure outcome is known.

    Patients with an unknown outcome are left out of numerator and denominator and counted as the
    ``denominator-exclusion`` population and the ``outcome_unknown`` statistic.
    """
    frame = cohort.patients
    total = len(frame)
    outcome = column(frame, "technical_success").astype("boolean")
    known = int(outcome.notna().sum())
    success = int(outcome.fillna(False).sum())
    return _proportion_measure(
        success, known, total, "technical outcome of the index procedure not recorded", report_unknown="outcome_unknown"
    )


def major_complications(cohort: Cohort) -> AnalysisResult:
    """Major complications of the index procedure among every patient with an index procedure.

    ``major_complication`` is 1/0 per patient; a missing value (not expected from the cohort builder) is
    left out and counted as ``denominator-exclusion``.
    """
    import numpy as np

    frame = cohort.patients
    total = len(frame)
    values = as_float(column(frame, "major_complication"))
    known_mask = ~np.isnan(values)
    known = int(known_mask.sum())
    with_complication = int((values[known_mask] > 0).sum())
    return _proportion_measure(with_complication, known, total, "major complication not recorded")


def _proportion_measure(
    numerator: int, known: int, total: int, why_unknown: str, report_unknown: str | None = None
) -> AnalysisResult:
    """A proportion measure of ``total`` patients: ``numerator`` of the ``known`` whose outcome is recorded; the
    ``total - known`` others are the ``denominator-exclusion`` (noted with ``why_unknown``, and a count
    statistic named ``report_unknown`` when given)."""
    from fhir_pts.analyses import aggregates as agg

    unknown = total - known
    statistics = proportion_statistics(numerator, known)
    aggregates: list[agg.Aggregate] = [agg.Proportion("proportion", numerator, known)]
    if report_unknown is not None:
        statistics.append(count(report_unknown, unknown, n=total))
        aggregates.append(agg.count(report_unknown, unknown, n=total))
    populations = {
        "initial-population": total,
        "denominator": total,
        "denominator-exclusion": unknown,
        "numerator": numerator,
    }
    notes = excluded_note(unknown, total, why_unknown)
    return AnalysisResult(
        statistics=statistics, populations=populations, score="proportion", notes=notes, aggregates=aggregates
    )


_RUNNERS = {
    COHORT.id: cohort_demographics,
    TECHNICAL_SUCCESS.id: technical_success,
    MAJOR_COMPLICATIONS.id: major_complications,
}


@hookimpl
def fhir_pts_describe_analyses() -> list[AnalysisInfo]:
    """The three descriptive measures."""
    return list(ANALYSES)


@hookimpl
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    """Run one of the descriptive measures; None for any other analysis."""
    runner = _RUNNERS.get(analysis.id)
    return runner(cohort) if runner is not None else None
