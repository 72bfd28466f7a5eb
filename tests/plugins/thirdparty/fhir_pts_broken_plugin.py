"""A third-party plugin whose analysis always raises: it must be reported and must not stop the others."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_pts import hookimpl
from fhir_pts.cohort.model import Cohort
from fhir_pts.plugin import AnalysisInfo, AnalysisResult

BROKEN = AnalysisInfo(id="thirdparty-broken", title="Always fails", description="Raises on purpose.")


@hookimpl
def fhir_pts_describe_analyses() -> list[AnalysisInfo]:
    return [BROKEN]


@hookimpl
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    if analysis.id != BROKEN.id:
        return None
    raise ZeroDivisionError("deliberately broken")
