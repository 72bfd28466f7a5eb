"""Built-in analyses ``imaging-follow-up``, ``primary-patency``, ``primary-assisted-patency`` and
``secondary-patency`` (contract §2 and §4).

A plugin registered by import as ``patency`` (:data:`fhir_pts.plugin_manager.BUILTIN_PLUGINS`).

Patency: Kaplan–Meier on the cohort's ``<definition>_months`` / ``<definition>_lost`` columns (time origin
day 0, censored at the last patency finding), 95 % log-log CI as R ``survfit(conf.type = "log-log")``:

- ``patients``: every patient with an index procedure;
- ``events``: patients who lost patency; ``patent_at_last_follow_up`` = patients analysed − events;
- ``proportion_at_last_follow_up``: crude proportion patent at the end of each patient's follow-up (as the
  abstract's "29/42"), with a 95 % Clopper–Pearson CI;
- ``km_6m`` … ``km_36m``: the KM estimate with CI, empty beyond the last follow-up time;
- ``at_risk_6m`` … ``at_risk_36m``: patients whose time is ≥ that time;
- extra: ``km_median_months`` (None when not reached), ``excluded`` (patients with no usable time).

Imaging follow-up: quartiles (R type 7) of ``imaging_follow_up_months`` and the reverse Kaplan–Meier median
(Schemper & Smith) of the secondary-patency times with the status flipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fhir_pts.analyses._common import KM_TIMES_MONTHS, as_float, column, count, excluded_note
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.hookspecs import hookimpl

if TYPE_CHECKING:  # numpy, pandas and the statistics libraries are imported where used (listing stays fast)
    import numpy as np

    from fhir_pts.analyses import stats
    from fhir_pts.cohort.model import Cohort

IMAGING_FOLLOW_UP = AnalysisInfo(
    id="imaging-follow-up",
    title="Imaging follow-up",
    description="Months from the index procedure to the last patency finding: median and quartiles, and the "
    "reverse Kaplan-Meier median follow-up of the secondary-patency times.",
    scoring="continuous-variable",
    improvement_notation="increase",
)

#: measure id -> (cohort column prefix, title)
PATENCY_DEFINITIONS: dict[str, tuple[str, str]] = {
    "primary-patency": ("primary_patency", "Primary patency"),
    "primary-assisted-patency": ("primary_assisted_patency", "Primary-assisted patency"),
    "secondary-patency": ("secondary_patency", "Secondary patency"),
}


def _patency_info(measure_id: str, title: str) -> AnalysisInfo:
    return AnalysisInfo(
        id=measure_id,
        title=title,
        description=f"{title}: patients patent at their last follow-up, and the Kaplan-Meier estimate (95 % "
        "log-log CI) and number at risk at 6, 12, 24 and 36 months.",
        scoring="proportion",
        improvement_notation="increase",
    )


PATENCY_ANALYSES: tuple[AnalysisInfo, ...] = tuple(
    _patency_info(mid, title) for mid, (_, title) in PATENCY_DEFINITIONS.items()
)
ANALYSES: tuple[AnalysisInfo, ...] = (IMAGING_FOLLOW_UP, *PATENCY_ANALYSES)


def _times(cohort: Cohort, prefix: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The durations (months from day 0 to the loss of patency or the last patency finding) and event flags
    (True: patency lost, the event; False: censored) of the patients with both known; and how many were left
    out."""
    import numpy as np

    months = as_float(column(cohort.patients, f"{prefix}_months"))
    lost = column(cohort.patients, f"{prefix}_lost").astype("boolean")
    ok = ~np.isnan(months) & lost.notna().to_numpy()
    return months[ok], lost.to_numpy(dtype=bool, na_value=False)[ok], int((~ok).sum())


def patency_statistics(km: stats.KaplanMeierEstimate, total: int, excluded: int) -> list[Statistic]:
    """The statistics of one patency definition from its Kaplan–Meier estimate (``km.n`` patients analysed,
    ``total`` in the measure, ``excluded`` without a usable time) — shared by the run and by pooling."""
    from fhir_pts.analyses import stats

    analysed = km.n
    events = km.events
    patent = analysed - events
    low, high = stats.clopper_pearson(patent, analysed)
    statistics = [
        count("patients", total, n=total),
        count("events", events, n=analysed),
        count("patent_at_last_follow_up", patent, n=analysed),
        Statistic(
            "proportion_at_last_follow_up", patent / analysed if analysed else None, low, high, n=analysed, unit="1"
        ),
    ]
    for t in KM_TIMES_MONTHS:
        point = km.at(t)
        est, lo, hi = point if point is not None else (None, None, None)
        statistics.append(Statistic(f"km_{t}m", est, lo, hi, n=analysed, unit="1"))
    statistics.extend(count(f"at_risk_{t}m", km.at_risk(t), n=analysed) for t in KM_TIMES_MONTHS)
    statistics.append(Statistic("km_median_months", km.median(), n=analysed, unit="mo"))
    statistics.append(count("excluded", excluded, n=total))
    return statistics


def patency(cohort: Cohort, prefix: str) -> AnalysisResult:
    """One patency definition (``prefix`` = ``primary_patency`` etc.): crude and Kaplan–Meier figures."""
    from fhir_pts.analyses import aggregates as agg
    from fhir_pts.analyses import stats

    total = len(cohort.patients)
    months, lost, excluded = _times(cohort, prefix)
    km = stats.kaplan_meier(durations=months, event_observed=lost)
    patent = km.n - km.events
    statistics = patency_statistics(km, total, excluded)
    populations = {
        "initial-population": total,
        "denominator": total,
        "denominator-exclusion": excluded,
        "numerator": patent,
    }
    notes = excluded_note(excluded, total, "no usable patency time")
    table = agg.km_table("kaplan-meier", months, lost, patients=total, excluded=excluded)
    return AnalysisResult(
        statistics=statistics,
        populations=populations,
        score="proportion_at_last_follow_up",
        curves={"kaplan-meier": km.curve()},
        notes=notes,
        aggregates=[table],
    )


def imaging_follow_up(cohort: Cohort) -> AnalysisResult:
    """Median (IQR) imaging follow-up in months, and the reverse Kaplan–Meier median follow-up."""
    import numpy as np

    from fhir_pts.analyses import stats

    total = len(cohort.patients)
    follow_up = as_float(column(cohort.patients, "imaging_follow_up_months"))
    follow_up = follow_up[~np.isnan(follow_up)]
    n = int(follow_up.size)
    q1, median, q3 = stats.quartiles(follow_up)
    months, lost, _ = _times(cohort, "secondary_patency")
    reverse = stats.reverse_km_median(durations=months, event_observed=lost) if months.size else None
    statistics = [
        Statistic("median_months", median, n=n, unit="mo"),
        Statistic("q1_months", q1, n=n, unit="mo"),
        Statistic("q3_months", q3, n=n, unit="mo"),
        Statistic("reverse_km_median_months", reverse, n=int(months.size), unit="mo"),
    ]
    populations = {
        "initial-population": total,
        "measure-population": total,
        "measure-population-exclusion": total - n,
        "measure-observation": n,
    }
    notes = excluded_note(total - n, total, "imaging follow-up time unknown")
    if months.size < total:
        notes += excluded_note(total - int(months.size), total, "no secondary-patency time (reverse KM median)")
    from fhir_pts.analyses import aggregates as agg

    aggregates = [
        agg.distribution(
            "imaging_follow_up_months",
            follow_up,
            unit="mo",
            yields={"median": "median_months", "q1": "q1_months", "q3": "q3_months"},
        ),
        agg.km_table(
            "secondary-patency-follow-up",
            months,
            lost,
            patients=total,
            excluded=total - int(months.size),
            reverse=True,
            yields={"median": "reverse_km_median_months"},
        ),
    ]
    return AnalysisResult(
        statistics=statistics, populations=populations, score="median_months", notes=notes, aggregates=aggregates
    )


@hookimpl
def fhir_pts_describe_analyses() -> list[AnalysisInfo]:
    """Imaging follow-up and the three patency measures."""
    return list(ANALYSES)


@hookimpl
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    """Run one of the patency measures; None for any other analysis."""
    if analysis.id == IMAGING_FOLLOW_UP.id:
        return imaging_follow_up(cohort)
    if analysis.id in PATENCY_DEFINITIONS:
        return patency(cohort, PATENCY_DEFINITIONS[analysis.id][0])
    return None
