"""A third-party analysis plugin, installed for the tests through its own entry point (not part of fhir-pts).

It counts the patients aged 50 or more, as an outside package would: it only imports the public plugin API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_pts import hookimpl
from fhir_pts.cohort.model import Cohort
from fhir_pts.plugin import AnalysisInfo, AnalysisResult, Statistic

OLDER = AnalysisInfo(
    id="thirdparty-older-patients",
    title="Patients aged 50 or more",
    description="Number and proportion of patients aged at least `min_age` years at the index procedure.",
    scoring="proportion",
    improvement_notation="decrease",
    version="0.1",
    default_parameters={"min_age": 50},
)


@hookimpl
def fhir_pts_describe_analyses() -> list[AnalysisInfo]:
    return [OLDER]


@hookimpl
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    if analysis.id != OLDER.id:
        return None
    ages = cohort.patients["age"].dropna()
    older = int((ages >= parameters["min_age"]).sum())
    total = int(ages.size)
    return AnalysisResult(
        statistics=[
            Statistic("older", float(older), n=total),
            Statistic("proportion", older / total if total else None, n=total, unit="1"),
        ],
        populations={"initial-population": len(cohort.patients), "denominator": total, "numerator": older},
        score="proportion",
    )
