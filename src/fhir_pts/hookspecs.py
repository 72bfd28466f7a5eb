"""The hook specifications of fhir-pts: the whole plugin API, in one module.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names are hooks below,
registered through the ``fhir_pts`` entry-point group, exactly as the built-in analyses are declared (fhir-pts
itself registers its built-ins by import, :data:`fhir_pts.plugin_manager.BUILTIN_PLUGINS`)::

    # pyproject.toml of a third-party package
    [project.entry-points.fhir_pts]
    vcss = "fhir_pts_vcss.plugin"

    # fhir_pts_vcss/plugin.py
    from fhir_pts import hookimpl

    @hookimpl
    def fhir_pts_instruments():
        return [Instrument(id="vcss", title="VCSS", questionnaires=(...,), items=(...), ...)]

    @hookimpl
    def fhir_pts_describe_analyses():
        return [AnalysisInfo(id="my-measure", title="...", description="...")]

    @hookimpl
    def fhir_pts_run_analysis(analysis, cohort, parameters):
        if analysis.id != "my-measure":
            return None
        return AnalysisResult(statistics=[...])

An implementation may take any subset of a hook's arguments, by name (as in pytest).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult
    from fhir_pts.cohort.model import Cohort
    from fhir_pts.instruments.model import Instrument

PROJECT_NAME = "fhir_pts"
#: Entry-point group through which built-in and third-party plugins are found.
ENTRY_POINT_GROUP = "fhir_pts"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def fhir_pts_instruments() -> list[Instrument]:
    """Declare the clinical instruments (scored questionnaires) this plugin provides.

    Return one :class:`~fhir_pts.instruments.model.Instrument` per instrument: its id, Questionnaire
    canonical(s) and resource, scored linkIds and answer values, scoring function and missing-item rule,
    ranges and classes, the total-score Observation code(s) that may stand in for a response, and its
    assessment windows (the contract's baseline and 3-month windows by default). Everything downstream
    follows: the adapters read its responses and totals, the cohort gets ``baseline_<id>`` / ``followup_<id>``
    / ``<id>_gain`` (and the declared extra columns), and the analyses ``<id>`` and ``<id>-gain-regression``
    exist for it. The built-in Villalta and CIVIQ-20 are declared through this hook too
    (:mod:`fhir_pts.instruments.builtin`).

    The instrument id (and each questionnaire canonical) must be unique across installed plugins; a plugin
    whose implementation raises, or returns something that is not an ``Instrument``, is left out with a
    warning naming it, and the others are kept.
    """


@hookspec
def fhir_pts_describe_analyses(instruments: list[Instrument]) -> list[AnalysisInfo]:
    """Describe the analyses this plugin provides.

    Called when the host lists or selects analyses. Return one :class:`AnalysisInfo` per analysis
    (its measure id, title, FHIR scoring type, improvement notation, version and default parameters). The
    measure id must be unique across all installed plugins.

    :param instruments: every instrument declared through :func:`fhir_pts_instruments` (built-ins first),
        for plugins whose analyses follow the instruments (the built-in ``scores`` and ``regression``
        describe ``<id>`` and ``<id>-gain-regression`` for each). Most plugins do not take it.
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
