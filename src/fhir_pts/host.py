"""The host API: embed fhir-pts in an EHR analytics application (semantic-versioned, see ``docs/host-api.md``).

One module, one class. A :class:`FhirPtsHost` owns its own plugin manager, its default parameters and its
assessment windows; nothing is kept at module level, so two hosts in one process never see each other's
plugins or settings. Analyses are the built-in plugins and the third-party ones of the ``fhir_pts`` entry-point
group, exactly as the command line finds them, and every run goes through the same steps as ``fhir-pts run``
(:mod:`fhir_pts.pipeline`, :mod:`fhir_pts.plugin_manager`, :mod:`fhir_pts.outputs`), so the numbers are the
same.

Example
-------
>>> from fhir_pts.host import FhirPtsHost
>>> host = FhirPtsHost(block=["class-shift"])                                  # doctest: +SKIP
>>> [info.id for info in host.analyses()][:3]                                  # doctest: +SKIP
['cohort', 'technical-success', 'major-complications']
>>> result = host.run(files=[Path("cohort.json")], analyses=["technical-success"])  # doctest: +SKIP
>>> result.results.set_index("statistic")["value"]["proportion"]               # doctest: +SKIP
0.9761904761904762
>>> result.write(Path("out"))                                                  # doctest: +SKIP

Public names (the API covered by :data:`HOST_API_VERSION`): :data:`HOST_API_VERSION`, :class:`FhirPtsHost`,
:class:`HostResult`, :class:`HostError`, :class:`UnknownAnalysisError`, :class:`HostInputError`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts import pipeline
from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.problems import Problem

if TYPE_CHECKING:
    import pandas as pd
    import pluggy
    from fhir.resources.R4B.measurereport import MeasureReport

    from fhir_pts.engines.base import Engine
    from fhir_pts.pipeline import AnalysisPlan, FetchResult, ServerConfig

__all__ = [
    "HOST_API_VERSION",
    "FhirPtsHost",
    "HostError",
    "HostInputError",
    "HostResult",
    "UnknownAnalysisError",
]

#: Version of this host API (not of the package). MAJOR: a public name removed or changed incompatibly;
#: MINOR: something added; PATCH: fixes. See ``docs/host-api.md``.
HOST_API_VERSION = "1.2.0"

#: The standard output files :meth:`HostResult.write` writes (contract §4), in order.
OUTPUT_FILES: tuple[str, ...] = ("measure-reports.json", "results.csv", "cohort.csv", "problems.csv")

Parameters = Mapping[str, Mapping[str, Any]]


class HostError(Exception):
    """The host was asked something it cannot do (bad arguments, unknown analyses, bad parameters)."""


class UnknownAnalysisError(HostError, pipeline.UnknownAnalysisError):
    """Measure ids asked for that no installed plugin provides; ``unknown`` lists them, ``installed`` the rest.

    The error of every face (:class:`fhir_pts.pipeline.UnknownAnalysisError`, whose message the command line
    prints with exit status 2 and ``serve`` answers with a 404), as a :class:`HostError`.
    """

    def __init__(self, unknown: Sequence[str], installed: Sequence[str]) -> None:
        pipeline.UnknownAnalysisError.__init__(self, unknown, installed)


class HostInputError(HostError):
    """An input cannot be used at all (a missing or unreadable file, an unusable ConceptMap or server)."""


@dataclass(frozen=True)
class HostResult:
    """What one run of a host gives back: the outputs of ``fhir-pts run``, held in memory.

    Attributes
    ----------
    outcomes: one :class:`~fhir_pts.analyses.api.AnalysisOutcome` per analysis run (``result`` or ``error``).
    bundle: ``measure-reports.json`` as a dict: a FHIR R4 ``Bundle`` (type ``collection``) of MeasureReports.
    measure_reports: the MeasureReports of ``bundle``, in analysis order (failed analyses: ``status`` ``error``).
    results: ``results.csv`` as a DataFrame (columns ``measure, statistic, value, ci_low, ci_high, p_value, n``;
        each number the value of the very text written to the file, typed as ``pandas.read_csv`` types it).
    patients: ``cohort.csv`` as a DataFrame: one row per patient with an index procedure.
    problems: ``problems.csv`` as a DataFrame (columns of :data:`fhir_pts.problems.PROBLEM_COLUMNS`).
    problem_list: the same problems as :class:`~fhir_pts.problems.Problem` objects.
    analysed_cohort: the :class:`~fhir_pts.cohort.model.Cohort` the analyses ran on (``patients``, problems,
        period, flow counts).
    date: the date every MeasureReport carries.

    Deprecated (host API 1.2): ``cohort`` (use ``patients``) and ``cohort_object`` (use ``analysed_cohort``).
    """

    outcomes: list[AnalysisOutcome]
    bundle: dict[str, Any]
    measure_reports: list[dict[str, Any]]
    results: pd.DataFrame
    patients: pd.DataFrame
    problems: pd.DataFrame
    problem_list: list[Problem]
    analysed_cohort: Cohort = field(repr=False)
    date: dt.datetime

    @property
    def cohort(self) -> pd.DataFrame:
        """Deprecated name of :attr:`patients` (``cohort.csv`` as a DataFrame)."""
        warnings.warn("HostResult.cohort is deprecated: use HostResult.patients", DeprecationWarning, stacklevel=2)
        return self.patients

    @property
    def cohort_object(self) -> Cohort:
        """Deprecated name of :attr:`analysed_cohort` (the :class:`~fhir_pts.cohort.model.Cohort`)."""
        warnings.warn(
            "HostResult.cohort_object is deprecated: use HostResult.analysed_cohort", DeprecationWarning, stacklevel=2
        )
        return self.analysed_cohort

    @property
    def failed(self) -> list[AnalysisOutcome]:
        """The analyses that failed (their error is in ``outcome.error`` and in their MeasureReport)."""
        return [o for o in self.outcomes if not o.ok]

    def measure_report(self, measure_id: str) -> dict[str, Any]:
        """The MeasureReport of one measure id (``KeyError`` if that analysis was not run)."""
        for outcome, report in zip(self.outcomes, self.measure_reports, strict=True):
            if outcome.info.id == measure_id:
                return report
        raise KeyError(measure_id)

    def measure_report_models(self) -> list[MeasureReport]:
        """The MeasureReports as ``fhir.resources.R4B`` models (parsing validates their structure)."""
        from fhir.resources.R4B.measurereport import MeasureReport

        return [MeasureReport.model_validate(report) for report in self.measure_reports]

    def write(self, out_dir: Path | str) -> dict[str, Path]:
        """Write the standard output files into ``out_dir`` (created if needed), complete or not at all.

        ``measure-reports.json`` is exactly :attr:`bundle`; ``results.csv``, ``cohort.csv`` and
        ``problems.csv`` are the files ``fhir-pts run`` writes for the same outcomes.

        Returns
        -------
        file name -> path, for each of :data:`OUTPUT_FILES`.
        """
        return pipeline.write_data_files(out_dir, self.analysed_cohort, self.outcomes, self.bundle)


def _windows(windows: TimePointWindows | Mapping[str, int] | None) -> TimePointWindows | None:
    if windows is None or isinstance(windows, TimePointWindows):
        return windows
    known = {f.name for f in fields(TimePointWindows)}
    stray = sorted(set(windows) - known)
    if stray:
        raise HostError(f"unknown window setting(s) {', '.join(stray)}; known: {', '.join(sorted(known))}")
    return TimePointWindows(**{k: int(v) for k, v in windows.items()})


def _merge(base: Parameters, overrides: Parameters | None) -> dict[str, dict[str, Any]]:
    merged = {measure: dict(values) for measure, values in base.items()}
    for measure, values in (overrides or {}).items():
        merged.setdefault(measure, {}).update(values)
    return merged


def _as_date(value: dt.date | str | None, what: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text.split("T", 1)[0] if "T" in text else text)
    except ValueError as exc:
        raise HostError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from exc


def restrict_to_index_period(cohort: Cohort, start: dt.date | None, end: dt.date | None) -> Cohort:
    """The cohort of the patients whose index date lies in ``[start, end]``: see
    :func:`fhir_pts.pipeline.restrict_to_index_period` (:class:`HostError` when ``start`` is after ``end``)."""
    try:
        return pipeline.restrict_to_index_period(cohort, start, end)
    except ValueError as exc:
        raise HostError(str(exc)) from None


class FhirPtsHost:
    """An fhir-pts host: its own plugins, default parameters and windows, and runs over FHIR data.

    Parameters
    ----------
    allow: entry-point names of the third-party plugins to load, and only these (``None``: the
        ``FHIR_PTS_PLUGINS`` environment variable if set, else all). The built-in analyses (``descriptive``,
        ``patency``, ``scores``, ``regression``) are plugins registered by import: always there.
    block: entry-point names never to load (added to ``FHIR_PTS_DISABLE_PLUGINS``); a built-in's name is not
        blocked (a warning says so): choose the analyses of a run with ``analyses=[...]``.
    parameters: default analysis parameters of this host, per measure id (``{"villalta-gain-regression":
        {"terms": ["age"]}}``); a run's ``parameters`` are merged over them, key by key.
    windows: default assessment windows (a :class:`~fhir_pts.cohort.model.TimePointWindows` or a mapping of
        its fields); ``None``: the contract's (baseline -90..0, 3 months 60..150 closest to day 91).
    concept_maps: FHIR ConceptMap files mapping site-local codes (as ``--concept-map``).
    load_entry_points: ``False`` starts with no analysis plugin at all, not even the built-ins (add them with
        :meth:`register`).
    workers: processes reading input files (the local engine).
    engine: ``"local"`` (default), ``"spark"`` (``pip install 'fhir-pts[spark]'``; on ``spark_master``, default
        ``local[*]``), or an :class:`~fhir_pts.engines.base.Engine` (e.g. ``SparkEngine(session=spark)`` to use
        the host's own SparkSession). It reads ``files`` and fetched ``server`` data; ``resources`` already held
        as dicts are mapped in this process.
    min_cell_count: minimum cell size of what :attr:`HostResult.bundle` shares (as ``fhir-pts run
        --min-cell-count``; default 10, :mod:`fhir_pts.disclosure`): small cells of the MeasureReports and of
        their pooling aggregates are masked; 0 shares everything exactly. ``results`` is never suppressed.
    share_distributions: share the value distributions in the aggregates (``--share-distributions``), so that
        pooled medians and quartiles are exact (``docs/pooling.md``).

    Examples
    --------
    >>> host = FhirPtsHost(allow=["class-shift"])                        # doctest: +SKIP
    >>> host.run(resources, analyses=["cohort"]).results                 # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        block: Iterable[str] | None = None,
        parameters: Parameters | None = None,
        windows: TimePointWindows | Mapping[str, int] | None = None,
        concept_maps: Sequence[Path | str] = (),
        load_entry_points: bool = True,
        workers: int = 1,
        engine: str | Engine = "local",
        spark_master: str | None = None,
        min_cell_count: int | None = None,
        share_distributions: bool = False,
    ) -> None:
        from fhir_pts.disclosure import MIN_CELL_COUNT, check_min_cell_count
        from fhir_pts.pipeline import SharingPolicy, get_plugin_manager, make_engine

        if workers < 1:
            raise HostError("workers must be at least 1")
        try:
            chosen = engine if not isinstance(engine, str) else make_engine(
                engine, workers=workers, spark_master=spark_master
            )
        except ValueError as exc:
            raise HostError(str(exc)) from exc
        try:
            mcc = check_min_cell_count(MIN_CELL_COUNT if min_cell_count is None else min_cell_count)
        except ValueError as exc:
            raise HostError(str(exc)) from None
        self._sharing = SharingPolicy(min_cell_count=mcc, share_distributions=bool(share_distributions))
        self._pm = get_plugin_manager(load_entry_points=load_entry_points, allow=allow, block=block)
        self._parameters = _merge({}, parameters)
        self._windows = _windows(windows)
        self._concept_maps = [p if isinstance(p, Path) else str(p) for p in concept_maps]  # str: canonicals too
        self._workers = workers
        self._engine: Engine = chosen

    # ------------------------------------------------------------------------------------------ plugins

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """This host's own :class:`pluggy.PluginManager` (project ``fhir_pts``), for advanced use."""
        return self._pm

    def register(self, plugin: object, name: str | None = None) -> str:
        """Add a plugin (a module or object with ``@hookimpl`` functions) to THIS host only.

        Returns the name it is registered under (``name``, or one pluggy makes up). Raises
        :class:`HostError` when the name is blocked or already taken.
        """
        try:
            registered = self._pm.register(plugin, name=name)
        except ValueError as exc:  # pluggy: name or plugin already registered
            raise HostError(str(exc)) from exc
        if registered is None:
            raise HostError(f"plugin {name!r} is blocked in this host")
        return str(registered)

    def unregister(self, name: str) -> None:
        """Remove the plugin registered under ``name`` from this host."""
        plugin = self._pm.get_plugin(name)
        if plugin is None:
            raise HostError(f"no plugin {name!r} in this host")
        self._pm.unregister(plugin, name=name)

    def plugins(self) -> dict[str, str]:
        """Analysis id -> name of the plugin that provides it."""
        return {info.id: plugin for info, plugin in pipeline.list_analyses(self._pm)}

    def analyses(self) -> list[AnalysisInfo]:
        """Every analysis this host's plugins provide, the contract's measures first (contract §4 order)."""
        try:
            return [info for info, _ in pipeline.list_analyses(self._pm)]
        except pipeline.PluginError as exc:
            raise HostError(str(exc)) from exc

    def _plan(self, analyses: Sequence[str] | None) -> AnalysisPlan:
        """The analyses of a run, the plugins asked once (:func:`fhir_pts.pipeline.plan_analyses`)."""
        try:
            return pipeline.plan_analyses(analyses, None, self._pm)
        except pipeline.UnknownAnalysisError as exc:
            raise UnknownAnalysisError(exc.unknown, exc.installed) from None
        except pipeline.PluginError as exc:
            raise HostError(str(exc)) from exc

    # ------------------------------------------------------------------------------------------ running

    def load(
        self,
        resources: Iterable[dict[str, Any]] | None = None,
        *,
        files: Sequence[Path | str] | None = None,
        server: ServerConfig | None = None,
        windows: TimePointWindows | Mapping[str, int] | None = None,
    ) -> Cohort:
        """Build the cohort from exactly one of ``resources`` (FHIR R4 resources as dicts, Bundles allowed),
        ``files`` (Bundle JSON / NDJSON files or folders) or ``server`` (a hospital FHIR server).

        Raises :class:`HostInputError` when the input cannot be used at all; problems in single records are
        not errors, they are in the cohort's ``problems``.
        """
        return self._load(resources, files, server, windows, pipeline.installed_instruments(self._pm))

    def _load(
        self,
        resources: Iterable[dict[str, Any]] | None,
        files: Sequence[Path | str] | None,
        server: ServerConfig | None,
        windows: TimePointWindows | Mapping[str, int] | None,
        instruments: Sequence[Any],
    ) -> Cohort:
        """:meth:`load` with this host's instruments (its plugins, allow / block) already asked for."""
        from fhir_pts.pipeline import InputError, add_source_findings, cohort_from_resources, load_cohort

        given = [name for name, value in (("resources", resources), ("files", files), ("server", server))
                 if value is not None]
        if len(given) != 1:
            raise HostError(f"give exactly one of resources, files or server (got {', '.join(given) or 'none'})")
        chosen = _windows(windows) or self._windows
        try:
            if resources is not None:
                vocabulary = pipeline.file_vocabulary(self._concept_maps)
                return cohort_from_resources(resources, concepts=vocabulary, windows=chosen, instruments=instruments)
            if files is not None:
                return load_cohort(list(files), vocabulary=pipeline.file_vocabulary(self._concept_maps),
                                   windows=chosen, engine=self._engine, instruments=instruments)  # fmt: skip
            assert server is not None
            with tempfile.TemporaryDirectory(prefix="fhir-pts-host-") as raw:
                paths, vocabulary, fetched = _fetch(server, Path(raw), self._concept_maps, instruments)
                cohort = load_cohort(paths, vocabulary=vocabulary, windows=chosen, engine=self._engine,
                                     instruments=instruments)  # fmt: skip
                return add_source_findings(cohort, fetched.problems, fetched.gaps)
        except InputError as exc:  # ConceptMap files that cannot be used raise it too
            raise HostInputError(str(exc)) from exc

    def analyse(
        self,
        cohort: Cohort,
        *,
        analyses: Sequence[str] | None = None,
        parameters: Parameters | None = None,
        index_period: tuple[dt.date | str | None, dt.date | str | None] | None = None,
        date: dt.datetime | None = None,
    ) -> HostResult:
        """Run analyses on a cohort built by :meth:`load` and gather every output.

        Parameters
        ----------
        cohort: the cohort.
        analyses: measure ids to run, in this order; ``None``: every analysis of this host.
        parameters: per measure id, parameters merged over this host's defaults and the analysis' own.
            Defaults of the host for analyses that are not run are ignored.
        index_period: ``(start, end)`` dates: only patients whose index date is in it (inclusive) are
            analysed, and it becomes the MeasureReports' ``period``. ``None``: every patient.
        date: the MeasureReports' date (default: now, UTC).

        Raises
        ------
        UnknownAnalysisError: a measure id no plugin of this host provides.
        HostError: a parameter the analysis does not declare, or a bad ``index_period``.
        """
        return self._analyse(cohort, self._plan(analyses), parameters, index_period, date)

    def _analyse(
        self,
        cohort: Cohort,
        plan: AnalysisPlan,
        parameters: Parameters | None,
        index_period: tuple[dt.date | str | None, dt.date | str | None] | None,
        date: dt.datetime | None,
    ) -> HostResult:
        """:meth:`analyse` with the analyses already planned (the plugins are not asked again)."""
        if index_period is not None:
            start, end = (_as_date(index_period[0], "period start"), _as_date(index_period[1], "period end"))
            cohort = restrict_to_index_period(cohort, start, end)
        selected = plan.analysis_ids
        merged = {k: v for k, v in _merge(self._parameters, parameters).items() if k in selected}
        try:
            plan = plan.with_parameters(merged)
        except pipeline.PluginError as exc:
            raise HostError(str(exc)) from exc
        outcomes = pipeline.analyse(cohort, plan=plan)
        stamp = (date or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        bundle, results, problems = pipeline.in_memory_outputs(cohort, outcomes, date=stamp, sharing=self._sharing)
        return HostResult(
            outcomes=outcomes,
            bundle=bundle,
            measure_reports=[entry["resource"] for entry in bundle["entry"]],
            results=results,
            patients=cohort.patients,
            problems=problems,
            problem_list=list(cohort.problems),
            analysed_cohort=cohort,
            date=stamp,
        )

    def run(
        self,
        resources: Iterable[dict[str, Any]] | None = None,
        *,
        files: Sequence[Path | str] | None = None,
        server: ServerConfig | None = None,
        analyses: Sequence[str] | None = None,
        parameters: Parameters | None = None,
        windows: TimePointWindows | Mapping[str, int] | None = None,
        index_period: tuple[dt.date | str | None, dt.date | str | None] | None = None,
        date: dt.datetime | None = None,
    ) -> HostResult:
        """Load the data (:meth:`load`) and run the analyses (:meth:`analyse`): ``fhir-pts run`` in memory.

        Give exactly one of ``resources``, ``files`` or ``server``. The measure ids are checked before any
        data is read. See :meth:`load` and :meth:`analyse` for the other arguments and the errors raised.
        """
        plan = self._plan(analyses)  # the measure ids are checked before any data is read
        cohort = self._load(resources, files, server, windows, plan.instruments)
        return self._analyse(cohort, plan, parameters, index_period, date)

    def pool(self, reports: Sequence[Mapping[str, Any] | Path | str], *, labels: Sequence[str] | None = None) -> Any:
        """Pool sites' shared ``measure-reports.json`` (Bundles as dicts, files or run folders), as ``fhir-pts pool``.

        Returns a :class:`fhir_pts.pooling.result.PoolResult` (``.outcomes()``, ``.measures`` with each statistic's
        exactness; write it with :func:`fhir_pts.pool.write_pooled`). Raises :class:`HostInputError` when the
        sites cannot be pooled (different measures, versions, windows or parameters: the message names it).
        """
        from fhir_pts.pipeline import PoolingError, pool_sites, read_site, site_from_bundle

        try:
            sites = []
            for i, report in enumerate(reports):
                label = labels[i] if labels is not None else f"site{i + 1}"
                if isinstance(report, Mapping):
                    sites.append(site_from_bundle(report, label))
                else:
                    sites.append(read_site(report, label if labels is not None else None))
            return pool_sites(sites)
        except PoolingError as exc:
            raise HostInputError(str(exc)) from exc


def _fetch(
    server: ServerConfig, raw_dir: Path, concept_maps: Sequence[Path | str], instruments: Sequence[Any] = ()
) -> tuple[list[Path], Any, FetchResult]:
    """Fetch the cohort from a hospital FHIR server into ``raw_dir`` (NDJSON files) with the server source;
    returns the files, the run's vocabulary (ConceptMap canonicals read from the server) and the fetch
    (its problems and data gaps)."""
    try:
        connection = pipeline.open_server(server)
        vocabulary = connection.vocabulary(concept_maps)
        if instruments:
            vocabulary = vocabulary.with_instruments(instruments)
        fetched = connection.fetch(raw_dir, vocabulary)
    except pipeline.ServerError as exc:
        raise HostInputError(f"server {server.base_url}: {exc}") from exc
    return list(fetched.paths), vocabulary, fetched
