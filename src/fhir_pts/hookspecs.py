"""The hook specifications of fhir-pts: the whole plugin API, in one module.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names are hooks below,
registered through the ``fhir_pts`` entry-point group, exactly as the built-in analyses are::

    # pyproject.toml of a third-party package
    [project.entry-points.fhir_pts]
    vcss = "fhir_pts_vcss.plugin"

    # fhir_pts_vcss/plugin.py
    from fhir_pts import hookimpl

    @hookimpl
    def fhir_pts_describe_analyses():
        return [AnalysisInfo(id="vcss", title="VCSS", description="...")]

    @hookimpl
    def fhir_pts_run_analysis(analysis, cohort, parameters):
        if analysis.id != "vcss":
            return None
        return AnalysisResult(statistics=[...])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fhir_pts.analyses.result import AnalysisInfo, AnalysisResult
    from fhir_pts.cohort.model import Cohort

PROJECT_NAME = "fhir_pts"
#: Entry-point group through which built-in and third-party plugins are found.
ENTRY_POINT_GROUP = "fhir_pts"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def fhir_pts_describe_analyses() -> list[AnalysisInfo]:
    """Describe the analyses this plugin provides.

    Called once when the host lists or selects analyses. Return one :class:`AnalysisInfo` per analysis
    (its measure id, title, FHIR scoring type, improvement notation, version and default parameters). The
    measure id must be unique across all installed plugins.
    """


@hookspec(firstresult=True)
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    """Run ``analysis`` on ``cohort`` and return its result, or ``None`` if it is not one of yours.

    :param analysis: one of the infos this plugin described.
    :param cohort: the built cohort (``cohort.patients`` has the columns of ``docs/cohort.md``).
    :param parameters: the analysis' ``default_parameters`` updated with the run's overrides.

    The host calls each plugin's implementation for its own analyses only and isolates failures: an
    exception here is reported with the plugin's name and does not stop the other analyses.
    """
