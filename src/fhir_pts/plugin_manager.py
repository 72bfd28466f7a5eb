"""The plugin host: find the analysis plugins, list their analyses and run them in isolation.

Built-in plugins (the contract's analyses and instruments, :data:`BUILTIN_PLUGINS`) are registered by import,
as pytest registers its own: a source checkout without installed metadata has them, and no allow or block list
switches a contract measure off. Third-party plugins are found through the ``fhir_pts`` entry-point group
(:data:`fhir_pts.hookspecs.ENTRY_POINT_GROUP`). Both implement the same hooks. Every call of
:func:`get_plugin_manager` builds a new :class:`pluggy.PluginManager`; there is no module-level manager, so two
hosts in one process never see each other's plugins.

Which entry points are loaded (as pytest's ``PYTEST_PLUGINS`` / datasette's ``DATASETTE_LOAD_PLUGINS``):

- ``allow`` argument, else the environment variable ``FHIR_PTS_PLUGINS``: a comma-separated allowlist of
  entry-point names (e.g. ``class-shift,vcss``); only these are loaded. Set but empty: none is loaded.
- ``block`` argument and the environment variable ``FHIR_PTS_DISABLE_PLUGINS`` (both apply): a denylist.

Built-in names in either list change nothing (a block is warned about); which analyses run is chosen by
measure id (``run_analyses(pm, cohort, analysis_ids)``, ``fhir-pts run --analysis``).

Example
-------
>>> pm = get_plugin_manager()
>>> [info.id for info, plugin in list_analyses(pm)][:2]
['cohort', 'technical-success']
>>> outcomes = run_analyses(pm, cohort, ["cohort"])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from fhir_pts import hookspecs
from fhir_pts.analyses import descriptive, patency, regression, scores
from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome, AnalysisResult
from fhir_pts.codes import CONTRACT_MEASURES
from fhir_pts.hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME
from fhir_pts.instruments import builtin as builtin_instruments
from fhir_pts.instruments.model import Instrument

if TYPE_CHECKING:  # pandas is not needed to list the analyses
    from fhir_pts.cohort.model import Cohort

#: Measure ids of contract §4, in the order of its table: listed (and run) first, in this order.
CONTRACT_ORDER: tuple[str, ...] = CONTRACT_MEASURES
#: Environment variable: comma-separated allowlist of plugin (entry-point) names.
ALLOW_ENV = "FHIR_PTS_PLUGINS"
#: Environment variable: comma-separated denylist of plugin (entry-point) names.
BLOCK_ENV = "FHIR_PTS_DISABLE_PLUGINS"
#: The built-in instruments: registered by import in every manager (``load_entry_points=False`` included, the
#: contract's cohort columns always exist), never blocked.
BUILTIN_INSTRUMENTS: dict[str, Any] = {builtin_instruments.PLUGIN_NAME: builtin_instruments}
#: The built-in analyses (the measures of contract §4): registered by import in every manager that loads plugins,
#: never blocked, whatever the allow and block lists say; ``load_entry_points=False`` leaves them out (an empty
#: manager for a host's or a test's own plugins).
BUILTIN_ANALYSES: dict[str, Any] = {
    "descriptive": descriptive,
    "patency": patency,
    "scores": scores,
    "regression": regression,
}
#: Every plugin registered by import (as pytest registers its own). Their entry points (declared too, as a third
#: party would, so that ``pip show`` lists them) are skipped.
BUILTIN_PLUGINS: dict[str, Any] = {**BUILTIN_INSTRUMENTS, **BUILTIN_ANALYSES}


class PluginError(Exception):
    """A problem with the installed plugins or with the analyses asked for (not a failure of an analysis)."""


class UnknownAnalysisError(PluginError):
    """Measure ids asked for that no installed plugin provides: the one error every face gives for them (the
    command line exits 2, the host raises it as :class:`fhir_pts.host.UnknownAnalysisError`, ``serve`` answers
    404 with its message). ``unknown`` lists them, ``installed`` the measure ids there are."""

    def __init__(self, unknown: Sequence[str], installed: Sequence[str]) -> None:
        self.unknown = list(unknown)
        self.installed = list(installed)
        super().__init__(
            f"unknown analysis id(s) {', '.join(map(repr, self.unknown))}; installed: "
            + (", ".join(sorted(self.installed)) or "none")
        )


def check_analysis_ids(analysis_ids: Iterable[str], installed: Sequence[str]) -> None:
    """Raise :class:`UnknownAnalysisError` when one of ``analysis_ids`` is not in ``installed``."""
    unknown = [a for a in dict.fromkeys(analysis_ids) if a not in set(installed)]
    if unknown:
        raise UnknownAnalysisError(unknown, installed)


class PluginWarning(UserWarning):
    """A plugin could not be loaded or could not describe its analyses; it is left out."""


def _split_names(text: str) -> set[str]:
    return {name.strip() for name in text.split(",") if name.strip()}


def _entry_point_names(group: str) -> list[str]:
    """Names of the entry points of ``group`` but the built-in plugins', in the order the distributions declare
    them.

    Two different distributions declaring the same name for different modules: only the first is loaded
    (pluggy registers one plugin per name), with a :class:`PluginWarning`; a built-in plugin's name always
    stays the built-in's.
    """
    seen = {name: ("fhir-pts (built in)", getattr(plugin, "__name__", "")) for name, plugin in BUILTIN_PLUGINS.items()}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != group:
                continue
            origin = (str(dist.metadata["Name"]), ep.value)
            first = seen.setdefault(ep.name, origin)
            if first[1] != ep.value:
                warnings.warn(
                    f"plugin name {ep.name!r} is declared by {first[0]} ({first[1]}) and by {origin[0]} "
                    f"({origin[1]}); only the first is loaded",
                    PluginWarning,
                    stacklevel=3,
                )
    return [name for name in seen if name not in BUILTIN_PLUGINS]


def get_plugin_manager(
    *,
    load_entry_points: bool = True,
    allow: Iterable[str] | None = None,
    block: Iterable[str] | None = None,
) -> pluggy.PluginManager:
    """A new plugin manager with the fhir-pts hook specs and the plugins of the ``fhir_pts`` entry points.

    Parameters
    ----------
    load_entry_points: register the built-in analyses (by import) and load the plugins declared in the
        ``fhir_pts`` entry-point group. False gives a manager with the built-in instruments only, to which
        plugins are added with ``pm.register(module, name=...)``.
    allow: entry-point names to load, and only these; None: the ``FHIR_PTS_PLUGINS`` environment variable
        if set, else all. The built-in plugins are loaded whatever it says.
    block: entry-point names never to load, in addition to those of ``FHIR_PTS_DISABLE_PLUGINS``. Blocked
        names are also refused by a later ``pm.register(..., name=...)``. A built-in name is not blocked: a
        :class:`PluginWarning` says so.

    Returns
    -------
    A new :class:`pluggy.PluginManager` (project name ``fhir_pts``).
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name, module in (BUILTIN_PLUGINS if load_entry_points else BUILTIN_INSTRUMENTS).items():
        pm.register(module, name=name)
    blocked = set(block or ())
    blocked |= _split_names(os.environ.get(BLOCK_ENV, ""))
    for name in sorted(blocked & set(BUILTIN_PLUGINS)):
        warnings.warn(
            f"built-in plugin {name!r} cannot be blocked (the contract's measures and instruments are always "
            "there); choose the analyses to run by measure id instead (fhir-pts run --analysis ID)",
            PluginWarning,
            stacklevel=2,
        )
    if allow is not None:
        allowed: set[str] | None = set(allow)
    elif ALLOW_ENV in os.environ:
        allowed = _split_names(os.environ[ALLOW_ENV])
    else:
        allowed = None
    if allowed is not None and load_entry_points:
        blocked |= set(_entry_point_names(ENTRY_POINT_GROUP)) - allowed
    blocked -= set(BUILTIN_PLUGINS)
    for name in sorted(blocked):
        pm.set_blocked(name)
    if load_entry_points:
        for name in [n for n in _entry_point_names(ENTRY_POINT_GROUP) if n not in blocked]:
            try:  # one plugin that cannot be imported must not take the host down
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
            except Exception as exc:
                warnings.warn(f"plugin {name!r} not loaded: {type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        warnings.warn(f"a plugin implements an unknown hook: {exc}", PluginWarning, stacklevel=2)
    return pm


def _plugin_name(pm: pluggy.PluginManager, impl: Any) -> str:
    return str(impl.plugin_name if impl.plugin_name is not None else pm.get_name(impl.plugin))


def _each_plugin(
    pm: pluggy.PluginManager, hook_name: str, **kwargs: Any
) -> Iterator[tuple[str, Any, Exception | None]]:
    """Call hook ``hook_name`` once per plugin implementing it, in registration order, through pluggy (a
    :meth:`~pluggy.PluginManager.subset_hook_caller` holding that plugin only, so wrappers and tracing apply):
    ``(plugin name, its answer or None, the exception it raised or None)``. One plugin's failure does not
    stop the others."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()  # registration order (pluggy calls in reverse)
    plugins = [impl.plugin for impl in impls]
    for impl in impls:
        caller = pm.subset_hook_caller(hook_name, remove_plugins=[p for p in plugins if p is not impl.plugin])
        try:
            answers = caller(**kwargs)
        except Exception as exc:  # a broken plugin must not hide the others
            yield _plugin_name(pm, impl), None, exc
            continue
        yield _plugin_name(pm, impl), answers[0] if answers else None, None


def list_instruments(pm: pluggy.PluginManager, *, warn: bool = True) -> list[tuple[Instrument, str]]:
    """Every instrument the registered plugins declare (``fhir_pts_instruments``), with the plugin's name.

    Built-ins (Villalta, CIVIQ-20) first, then by plugin in registration order. Left out with a
    :class:`PluginWarning` naming the plugin: a plugin whose hook raises or returns something that is not an
    :class:`~fhir_pts.instruments.model.Instrument` (all its instruments), and an instrument whose id, or one
    of whose questionnaire canonicals or total codes, another plugin declared first. ``warn=False``: left out
    silently (for callers that only need the list; the run reports them).
    """
    found: list[tuple[Instrument, str]] = []
    owner: dict[Any, str] = {}
    for name, answer, error in _each_plugin(pm, "fhir_pts_instruments"):
        try:
            if error is not None:
                raise error
            declared = list(answer) if answer is not None else []
            for instrument in declared:
                if not isinstance(instrument, Instrument):
                    raise TypeError(f"fhir_pts_instruments returned {type(instrument).__name__}, not Instrument")
        except Exception as exc:
            if warn:
                warnings.warn(
                    f"plugin {name!r} left out, it cannot declare its instruments: {type(exc).__name__}: {exc}",
                    PluginWarning,
                    stacklevel=2,
                )
            continue
        for instrument in declared:
            keys = [("id", instrument.id), *(("questionnaire", q) for q in instrument.questionnaires)]
            keys += [("total code", "|".join(c)) for c in instrument.total_codes]
            taken = [
                f"{kind} {value!r} (declared by {owner[(kind, value)]!r})"
                for kind, value in keys
                if (kind, value) in owner
            ]
            if taken and warn:
                warnings.warn(
                    f"instrument {instrument.id!r} of plugin {name!r} left out: {'; '.join(taken)}",
                    PluginWarning,
                    stacklevel=2,
                )
            if taken:
                continue
            owner.update(dict.fromkeys(keys, name))
            found.append((instrument, name))
    return found


def instruments_of(pm: pluggy.PluginManager, *, warn: bool = True) -> tuple[Instrument, ...]:
    """The instruments of :func:`list_instruments`, without the plugin names."""
    return tuple(instrument for instrument, _ in list_instruments(pm, warn=warn))


def _describe_all(
    pm: pluggy.PluginManager, instruments: Sequence[Instrument] | None = None
) -> tuple[list[tuple[AnalysisInfo, str]], list[str]]:
    """Call each plugin's ``fhir_pts_describe_analyses`` on its own; return the analyses and the failures.
    ``instruments``: those the plugins declared, when the caller has them already."""
    found: list[tuple[AnalysisInfo, str]] = []
    errors: list[str] = []
    if instruments is None:  # a broken instrument plugin is reported where it is used
        instruments = instruments_of(pm, warn=False)
    instruments = list(instruments)
    for name, raw, error in _each_plugin(pm, "fhir_pts_describe_analyses", instruments=instruments):
        try:
            if error is not None:
                raise error
            infos: list[Any] = list(raw) if raw is not None else []
            for info in infos:
                if not isinstance(info, AnalysisInfo):
                    raise TypeError(f"fhir_pts_describe_analyses returned {type(info).__name__}, not AnalysisInfo")
        except Exception as exc:  # a broken plugin must not hide the others
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        found.extend((info, name) for info in infos)
    return found, errors


def list_analyses(
    pm: pluggy.PluginManager, *, instruments: Sequence[Instrument] | None = None
) -> list[tuple[AnalysisInfo, str]]:
    """Every analysis the registered plugins provide, with the name of the plugin providing it.

    ``instruments``: the plugins' instruments when the caller has them (:func:`instruments_of`), so that
    the instrument hook is not called again.

    Order: the measures of contract §4 first, in the order of its table (:data:`CONTRACT_ORDER`); then the
    others by plugin in registration order, each plugin's analyses in the order it describes them.
    A plugin whose ``fhir_pts_describe_analyses`` raises is left out with a :class:`PluginWarning`.

    Raises
    ------
    PluginError: two analyses (of one plugin or of two) claim the same measure id.
    """
    found, errors = _describe_all(pm, instruments)
    for message in errors:
        warnings.warn(f"plugin left out, it cannot describe its analyses: {message}", PluginWarning, stacklevel=2)
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for info, name in found:
        if info.id in seen:
            duplicates.append(f"measure id {info.id!r} is provided by both {seen[info.id]!r} and {name!r}")
        else:
            seen[info.id] = name
    found.sort(
        key=lambda item: CONTRACT_ORDER.index(item[0].id) if item[0].id in CONTRACT_ORDER else len(CONTRACT_ORDER)
    )
    if duplicates:
        raise PluginError(
            "duplicate measure ids: "
            + "; ".join(duplicates)
            + f" (disable one with {BLOCK_ENV}=<plugin name> or uninstall it)"
        )
    return found


def _run_one(
    pm: pluggy.PluginManager, info: AnalysisInfo, plugin: str, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisOutcome:
    """Run ``info`` through ``pm.hook`` restricted to the plugin that described it (a subset hook caller, so
    ``firstresult``, wrappers and tracing apply), isolating a failure as the outcome's ``error``."""
    impls = pm.hook.fhir_pts_run_analysis.get_hookimpls()
    try:
        if not any(_plugin_name(pm, i) == plugin for i in impls):
            raise PluginError(f"plugin describes {info.id!r} but has no fhir_pts_run_analysis")
        others = [i.plugin for i in impls if _plugin_name(pm, i) != plugin]
        caller = pm.subset_hook_caller("fhir_pts_run_analysis", remove_plugins=others)
        result: Any = caller(analysis=info, cohort=cohort, parameters=parameters)
        if result is None:
            raise PluginError(f"fhir_pts_run_analysis returned no result for {info.id!r}")
        if not isinstance(result, AnalysisResult):
            raise TypeError(f"fhir_pts_run_analysis returned {type(result).__name__}, not AnalysisResult")
    except Exception as exc:  # isolate: report the failure with the plugin's name, the others go on
        return AnalysisOutcome(
            info=info, plugin=plugin, error=f"{plugin}: {type(exc).__name__}: {exc}", parameters=dict(parameters)
        )
    return AnalysisOutcome(info=info, plugin=plugin, result=result, parameters=dict(parameters))


def select_analyses(
    pm: pluggy.PluginManager,
    analysis_ids: Sequence[str] | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    available: Sequence[tuple[AnalysisInfo, str]] | None = None,
) -> list[tuple[AnalysisInfo, str, dict[str, Any]]]:
    """The analyses a run will run: ``(info, plugin name, merged parameters)`` each, checked before any data.

    ``analysis_ids`` None selects every installed analysis (order of :func:`list_analyses`); a repeated id is
    run once. Parameters are merged over each analysis' ``default_parameters``. ``available``: the
    :func:`list_analyses` of ``pm`` when the caller has it (the describe hook is then not called again).

    Raises
    ------
    UnknownAnalysisError: an unknown measure id (the message lists the installed ones).
    PluginError: parameters for an analysis that is not run, or a parameter the analysis does not declare in
        its ``default_parameters``.
    """
    if available is None:
        available = list_analyses(pm)
    by_id = {info.id: (info, name) for info, name in available}
    if analysis_ids is None:
        selected = [info.id for info, _ in available]
    else:
        selected = list(dict.fromkeys(analysis_ids))
        check_analysis_ids(selected, list(by_id))
    parameters = parameters or {}
    stray = [a for a in parameters if a not in selected]
    if stray:
        raise PluginError(f"parameters given for analyses that are not run: {', '.join(map(repr, stray))}")
    chosen: list[tuple[AnalysisInfo, str, dict[str, Any]]] = []
    for analysis_id in selected:
        info, name = by_id[analysis_id]
        overrides = dict(parameters.get(analysis_id, {}))
        undeclared = [k for k in overrides if k not in info.default_parameters]
        if undeclared:
            raise PluginError(
                f"analysis {analysis_id!r} has no parameter(s) {', '.join(map(repr, undeclared))}; "
                f"its parameters: {', '.join(sorted(info.default_parameters)) or 'none'}"
            )
        chosen.append((info, name, {**info.default_parameters, **overrides}))
    return chosen


def run_analyses(
    pm: pluggy.PluginManager,
    cohort: Cohort,
    analysis_ids: Sequence[str] | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    on_outcome: Callable[[AnalysisOutcome], None] | None = None,
    *,
    selected: Sequence[tuple[AnalysisInfo, str, Mapping[str, Any]]] | None = None,
) -> list[AnalysisOutcome]:
    """Run analyses on a cohort, each by its own plugin only, isolating failures.

    Parameters
    ----------
    pm: a manager from :func:`get_plugin_manager`.
    cohort: the cohort every analysis receives.
    analysis_ids, parameters: as :func:`select_analyses`.
    on_outcome: called with each outcome as soon as its analysis has run (progress).
    selected: the :func:`select_analyses` already made (then ``analysis_ids`` and ``parameters`` are not
        used, and the plugins are not asked to describe their analyses again).

    Returns
    -------
    One :class:`AnalysisOutcome` per analysis: ``result`` set, or ``error`` = ``"<plugin>: <ExcType>: <msg>"``
    when the plugin raised (or returned nothing / not an ``AnalysisResult``). A failure never stops the others.

    Raises
    ------
    PluginError: see :func:`select_analyses`.
    """
    outcomes = []
    if selected is None:
        selected = select_analyses(pm, analysis_ids, parameters)
    for info, name, merged in selected:
        outcome = _run_one(pm, info, name, cohort, merged)
        if on_outcome is not None:
            on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes


def plugin_distributions(pm: pluggy.PluginManager) -> dict[str, str]:
    """Plugin name -> ``"<distribution> <version>"`` for the built-in plugins (``fhir-pts <version>``) and those
    loaded from entry points."""
    from fhir_pts import __version__

    out = {name: f"fhir-pts {__version__}" for name, plugin in pm.list_name_plugin() if name in BUILTIN_PLUGINS}
    for plugin, dist in pm.list_plugin_distinfo():
        name = pm.get_name(plugin)
        if name is not None:
            out[name] = f"{dist.project_name} {dist.version}"
    return out
