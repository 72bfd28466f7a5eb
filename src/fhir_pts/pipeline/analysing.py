"""The analyses of a run: the plugins asked once (:class:`AnalysisPlan`, :func:`plan_analyses`), then run
(:func:`analyse`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

    from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome
    from fhir_pts.cohort.model import Cohort
    from fhir_pts.instruments.model import Instrument


def installed_instruments(plugin_manager: pluggy.PluginManager | None = None) -> tuple[Instrument, ...]:
    """The instruments of the plugins of ``plugin_manager`` (default: the installed ones, as ``analyse`` finds
    them): Villalta and CIVIQ-20, then the plugins'. A plugin that cannot declare its instruments is left out
    with a warning naming it."""
    from fhir_pts.plugin_manager import get_plugin_manager, instruments_of

    return instruments_of(plugin_manager or get_plugin_manager())


def plugin_instruments(plugin_manager: pluggy.PluginManager | None = None) -> tuple[Instrument, ...]:
    """The instruments the installed plugins add to the built-in ones (Villalta, CIVIQ-20)."""
    from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS

    builtin = {b.id for b in BUILTIN_INSTRUMENTS}
    return tuple(i for i in installed_instruments(plugin_manager) if i.id not in builtin)


def list_analyses(plugin_manager: pluggy.PluginManager | None = None) -> list[tuple[AnalysisInfo, str]]:
    """Every installed analysis (of ``plugin_manager``'s plugins) with the name of its plugin, the contract's
    measures first (raises ``PluginError`` when two plugins claim one measure id)."""
    from fhir_pts.plugin_manager import get_plugin_manager
    from fhir_pts.plugin_manager import list_analyses as listed

    return listed(plugin_manager or get_plugin_manager())


@dataclass(frozen=True)
class AnalysisPlan:
    """What a run will analyse, settled before any data is read: the plugins asked once for their instruments
    and their analyses (the describe hook runs once per run), the selection checked.

    ``available``: every installed analysis with its plugin; ``selected``: ``(info, plugin, parameters)`` of
    each analysis to run, in order, parameters merged over the analysis' defaults.
    """

    plugin_manager: pluggy.PluginManager
    instruments: tuple[Instrument, ...]
    available: tuple[tuple[AnalysisInfo, str], ...]
    selected: tuple[tuple[AnalysisInfo, str, dict[str, Any]], ...]

    @property
    def analysis_ids(self) -> list[str]:
        """The measure ids to run, in order."""
        return [info.id for info, _, _ in self.selected]

    def with_parameters(self, parameters: Mapping[str, Mapping[str, Any]] | None) -> AnalysisPlan:
        """The same analyses with ``parameters`` merged over their defaults (checked: ``PluginError``), without
        asking the plugins again."""
        from fhir_pts.plugin_manager import select_analyses

        selected = select_analyses(self.plugin_manager, self.analysis_ids, parameters, available=self.available)
        return AnalysisPlan(self.plugin_manager, self.instruments, self.available, tuple(selected))


def plan_analyses(
    analysis_ids: Sequence[str] | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
) -> AnalysisPlan:
    """Ask the plugins (of ``plugin_manager``, default: the installed ones) once for their instruments and
    analyses, and check the selection (``analysis_ids`` None: every one) and its ``parameters``.

    Raises ``UnknownAnalysisError`` for a measure id no plugin provides, ``PluginError`` for parameters that do
    not fit (both exit status 2 on the command line).
    """
    from fhir_pts.plugin_manager import get_plugin_manager, instruments_of, select_analyses
    from fhir_pts.plugin_manager import list_analyses as listed

    pm = plugin_manager or get_plugin_manager()
    instruments = instruments_of(pm)
    available = listed(pm, instruments=instruments)
    selected = select_analyses(pm, analysis_ids, parameters, available=available)
    return AnalysisPlan(pm, tuple(instruments), tuple(available), tuple(selected))


def analyse(
    cohort: Cohort,
    analysis_ids: Sequence[str] | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    on_outcome: Callable[[AnalysisOutcome], None] | None = None,
    *,
    plan: AnalysisPlan | None = None,
) -> list[AnalysisOutcome]:
    """Run the selected analyses (all installed ones by default); a failing plugin does not stop the others.

    ``plan`` (:func:`plan_analyses`): the selection made before reading (then ``analysis_ids``,
    ``parameters`` and ``plugin_manager`` are not used). ``on_outcome`` is called with each outcome as its
    analysis finishes (progress).
    """
    from fhir_pts.plugin_manager import run_analyses

    if plan is None:
        plan = plan_analyses(analysis_ids, parameters, plugin_manager)
    return run_analyses(plan.plugin_manager, cohort, on_outcome=on_outcome, selected=plan.selected)
