"""The run, end to end — inputs → facts → cohort → analyses → output files — and the one way in for the faces.

Each step is a small function so that the CLI, an embedding host and the server mode compose the same parts:

>>> plan = plan_analyses(["cohort"])                                            # doctest: +SKIP
>>> cohort = load_cohort(["bundle.json"], instruments=plan.instruments)        # doctest: +SKIP
>>> outcomes = analyse(cohort, plan=plan)                                       # doctest: +SKIP
>>> written = write_run(Path("out"), cohort, outcomes)                         # doctest: +SKIP
>>> write_back(server_config, written.bundle)                                  # doctest: +SKIP

The faces (:mod:`fhir_pts.cli`, :mod:`fhir_pts.host`, :mod:`fhir_pts.serve`) import this module and nothing
below it but the few shared modules ``tests/test_architecture.py`` lists (``docs/architecture.md``): what else
they need from the layers below (the errors to catch, ``ServerConfig``, ``staged_output``, the pooling and
validation operations, ...) is re-exported here (:data:`REEXPORTED`, imported on first use so that building the
command-line parser stays fast). Nothing here imports pandas or the statistics stack at import time.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts.lazy import lazy_getattr

if TYPE_CHECKING:
    import pandas as pd
    import pluggy

    from fhir_pts.adapters.common import FHIR_DATETIME
    from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome
    from fhir_pts.cohort.model import Cohort, TimePointWindows
    from fhir_pts.engines import make_engine
    from fhir_pts.engines.base import Engine, cohort_from_facts
    from fhir_pts.errors import InputError
    from fhir_pts.instruments.model import Instrument
    from fhir_pts.outputs.abstract_comparison import comparison_rows, format_comparison, write_comparison_csv
    from fhir_pts.outputs.aggregates import SharingPolicy
    from fhir_pts.outputs.pooled import pooled_bundle
    from fhir_pts.outputs.staging import OutputFolderError, staged_output
    from fhir_pts.outputs.suppression import suppress_report
    from fhir_pts.plugin_manager import PluginError, UnknownAnalysisError, get_plugin_manager
    from fhir_pts.pool import PoolingError, pool_paths, pool_sites, read_site, site_from_bundle, write_pooled
    from fhir_pts.problems import Problem
    from fhir_pts.sources.private_files import warn_if_exposed
    from fhir_pts.sources.server.config import ConfigError, ServerConfig, load_server_config
    from fhir_pts.sources.server.errors import ServerError
    from fhir_pts.sources.server.fetch import FetchResult, ServerSource
    from fhir_pts.sources.server.write_back import WriteBackSummary
    from fhir_pts.synth import synthesize
    from fhir_pts.validate import run_validate
    from fhir_pts.vocabulary import ConceptMapTranslator, Vocabulary

#: Names of the layers below that the faces use, re-exported here: name -> module (imported on first use).
REEXPORTED: dict[str, str] = {
    # errors the faces turn into exit statuses, HostErrors and OperationOutcomes
    "InputError": "fhir_pts.errors",
    "PluginError": "fhir_pts.plugin_manager",
    "UnknownAnalysisError": "fhir_pts.plugin_manager",
    "ServerError": "fhir_pts.sources.server.errors",
    "ConfigError": "fhir_pts.sources.server.config",
    "OutputFolderError": "fhir_pts.outputs.staging",
    "PoolingError": "fhir_pts.pool",
    # the FHIR dateTime grammar (serve's $evaluate-measure parameters)
    "FHIR_DATETIME": "fhir_pts.adapters.common",
    # the settings of a run
    "ServerConfig": "fhir_pts.sources.server.config",
    "load_server_config": "fhir_pts.sources.server.config",
    "SharingPolicy": "fhir_pts.outputs.aggregates",
    "make_engine": "fhir_pts.engines",
    "get_plugin_manager": "fhir_pts.plugin_manager",
    "warn_if_exposed": "fhir_pts.sources.private_files",
    # steps and operations
    "cohort_from_facts": "fhir_pts.engines.base",
    "staged_output": "fhir_pts.outputs.staging",
    "suppress_report": "fhir_pts.outputs.suppression",
    "pooled_bundle": "fhir_pts.outputs.pooled",
    "comparison_rows": "fhir_pts.outputs.abstract_comparison",
    "format_comparison": "fhir_pts.outputs.abstract_comparison",
    "write_comparison_csv": "fhir_pts.outputs.abstract_comparison",
    "synthesize": "fhir_pts.synth",
    "run_validate": "fhir_pts.validate",
    "pool_paths": "fhir_pts.pool",
    "pool_sites": "fhir_pts.pool",
    "read_site": "fhir_pts.pool",
    "site_from_bundle": "fhir_pts.pool",
    "write_pooled": "fhir_pts.pool",
}


__getattr__ = lazy_getattr(__name__, REEXPORTED)


__all__ = [
    "FHIR_DATETIME",
    "AnalysisPlan",
    "ConfigError",
    "InputError",
    "OutputFolderError",
    "PluginError",
    "PoolingError",
    "RunFiles",
    "ServerConfig",
    "ServerError",
    "SharingPolicy",
    "UnknownAnalysisError",
    "add_source_findings",
    "analyse",
    "cohort_from_facts",
    "cohort_from_resources",
    "comparison_rows",
    "estimate_inputs",
    "expand_inputs",
    "fetch_raw",
    "file_vocabulary",
    "format_comparison",
    "get_plugin_manager",
    "in_memory_outputs",
    "installed_instruments",
    "list_analyses",
    "load_cohort",
    "load_server_config",
    "make_engine",
    "open_server",
    "packaged_measure",
    "plan_analyses",
    "plugin_instruments",
    "pool_paths",
    "pool_sites",
    "pooled_bundle",
    "read_site",
    "restrict_to_index_period",
    "run_validate",
    "site_from_bundle",
    "staged_output",
    "suppress_report",
    "synthesize",
    "warn_if_exposed",
    "write_back",
    "write_comparison_csv",
    "write_data_files",
    "write_pooled",
    "write_run",
]


def add_source_findings(cohort: Cohort, problems: Sequence[Problem], data_gaps: Sequence[str]) -> Cohort:
    """Add what fetching the data found (e.g. a server's export errors, the contract inputs it cannot provide)
    to the cohort: its problems first in ``cohort.problems``, its gaps to ``cohort.data_gaps``."""
    cohort.problems = [*problems, *cohort.problems]
    cohort.data_gaps = [*cohort.data_gaps, *data_gaps]
    return cohort


# ------------------------------------------------------------------------------------------ the analyses


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


# ------------------------------------------------------------------------------------------ reading


def expand_inputs(inputs: Sequence[Path | str]) -> list[Path]:
    """The FHIR files the INPUT files / folders name (raises ``InputError`` for a missing path, a name that is
    not accepted, FHIR XML: checked before anything is read)."""
    from fhir_pts.sources.files import expand_inputs as expand

    return expand(list(inputs))


def estimate_inputs(inputs: Sequence[Path | str]) -> tuple[int, int | None]:
    """How many files the inputs are, and about how many resources they hold (None: unknown), for a progress
    bar's total."""
    from fhir_pts.sources.estimate import estimate_resources

    files = expand_inputs(inputs)
    return len(files), estimate_resources(files)


def load_cohort(
    inputs: Sequence[Path | str],
    *,
    concept_maps: Sequence[Path | str] = (),
    vocabulary: Vocabulary | None = None,
    windows: TimePointWindows | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    engine: Engine | None = None,
    instruments: Sequence[Instrument] | None = None,
    while_reading: Callable[[], None] | None = None,
) -> Cohort:
    """Read FHIR files / folders and build the cohort (raises ``InputError`` for unusable inputs).

    ``vocabulary``: the run's vocabulary, built once (:meth:`Vocabulary.build`) and shared with the other doors;
    else it is built here from the ConceptMap files ``concept_maps``. ``engine`` runs the reading (default: the
    embedded :class:`~fhir_pts.engines.local.LocalEngine` with ``workers`` processes, which runs
    ``while_reading`` in this process while its workers read, e.g. :func:`warm_up`). ``instruments``: those
    read and scored (default: :func:`installed_instruments`; a run passes its :attr:`AnalysisPlan.instruments`).
    """
    from fhir_pts.engines.local import LocalEngine
    from fhir_pts.vocabulary import Vocabulary

    if vocabulary is None:
        vocabulary = Vocabulary.build(list(concept_maps))
    vocabulary = vocabulary.with_instruments(installed_instruments() if instruments is None else instruments)
    chosen = engine if engine is not None else LocalEngine(workers=workers, while_reading=while_reading)
    cohort = chosen.load_cohort(list(inputs), vocabulary, windows, progress)
    cohort.concept_maps = vocabulary.sources
    return cohort


def warm_up(report: bool = True) -> None:
    """Import what the analyses and the outputs will need (statistics, FHIR models, plotting).

    Meant to run while worker processes read the input (``load_cohort(..., while_reading=...)``): these
    imports take ~2 s of one core that would otherwise follow the reading. Nothing is computed; a library
    that cannot be imported is left for the step that needs it to report.
    """
    modules = ["fhir_pts.plugin_manager", "fhir_pts.analyses.stats", "lifelines", "statsmodels.api",
               "fhir.resources.R4B.bundle", "fhir.resources.R4B.measurereport", "fhir_pts.outputs"]  # fmt: skip
    if report:
        modules += ["fhir_pts.outputs.report", "fhir_pts.outputs.figures"]
    # Imports make no garbage cycles worth collecting, and the collector would walk the growing heap again and again
    # (~1 s of CPU); what they make lives for the whole run, so it is then frozen out of later full collections.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:
                continue
    finally:
        if collecting:
            gc.enable()
        gc.freeze()


def cohort_from_resources(
    resources: Iterable[dict[str, Any]],
    *,
    concepts: Vocabulary | ConceptMapTranslator | None = None,
    windows: TimePointWindows | None = None,
    instruments: Sequence[Instrument] | None = None,
) -> Cohort:
    """Build the cohort from resources already held as dicts (an embedding host's data); ``instruments`` as
    for :func:`load_cohort`."""
    from fhir_pts.engines.base import cohort_from_facts
    from fhir_pts.engines.local import collect_from_resources
    from fhir_pts.vocabulary import Vocabulary

    vocabulary = Vocabulary.of(concepts)
    vocabulary = vocabulary.with_instruments(installed_instruments() if instruments is None else instruments)
    cohort = cohort_from_facts(collect_from_resources(resources, vocabulary), windows, vocabulary.instruments)
    cohort.concept_maps = vocabulary.sources
    return cohort


def file_vocabulary(concept_maps: Sequence[Path | str]) -> Vocabulary:
    """The vocabulary of a run over files: the ConceptMap files ``concept_maps`` (``InputError`` if unusable)."""
    from fhir_pts.vocabulary import Vocabulary

    return Vocabulary.build(list(concept_maps))


def restrict_to_index_period(cohort: Cohort, start: Any, end: Any) -> Cohort:
    """The cohort of the patients whose index date lies in ``[start, end]`` (dates, both inclusive, either open).

    The returned cohort's ``period`` is the asked period (an open end keeps the cohort's own, moved to the
    other bound if it would fall outside it); its problems are the cohort's; ``flow["outside_index_period"]``
    counts the patients left out (patients without an index date are left out whenever a bound is given).
    The given cohort is not changed. Raises ``ValueError`` when ``start`` is after ``end``.
    """
    if start is None and end is None:
        return cohort
    if start is not None and end is not None and start > end:
        raise ValueError(f"period start {start} is after its end {end}")
    import pandas as pd

    from fhir_pts.cohort.model import Cohort

    frame = cohort.patients
    index = pd.to_datetime(frame["index_date"], errors="coerce", format="ISO8601")
    keep = index.notna()  # comparisons with NaT are False: no index date, not kept
    if start is not None:
        keep &= index >= pd.Timestamp(start)
    if end is not None:
        keep &= index <= pd.Timestamp(end)
    kept = frame[keep.to_numpy(dtype=bool)].reset_index(drop=True)
    flow = dict(cohort.flow)
    flow["outside_index_period"] = int(len(frame) - len(kept))
    period_start = start if start is not None else cohort.period_start
    period_end = end if end is not None else cohort.period_end
    if start is not None and period_end is not None and period_end < start:
        period_end = start  # an open end before the asked start: the period is that one day
    if end is not None and period_start is not None and period_start > end:
        period_start = end
    return Cohort(
        patients=kept,
        problems=list(cohort.problems),
        period_start=period_start,
        period_end=period_end,
        windows=cohort.windows,
        flow=flow,
        concept_maps=cohort.concept_maps,
    )


# ------------------------------------------------------------------------------------------ a FHIR server


def open_server(config: ServerConfig) -> ServerSource:
    """Connect to the server ``config`` describes (discovery, R4 checked, authentication): the one connection
    a run's vocabulary (:meth:`ServerSource.vocabulary`) and fetch share."""
    from fhir_pts.sources.server.fetch import ServerSource

    return ServerSource.open(config)


def fetch_raw(
    source: ServerSource, folder: Path, vocabulary: Vocabulary, progress: Any = None
) -> FetchResult:
    """Fetch the cohort from ``source`` into ``folder`` (created owner-only: it holds PHI; its files are made
    owner-only too) as NDJSON files :func:`load_cohort` reads. ``progress``: told of each search / download."""
    from fhir_pts.sources.private_files import make_private_dir, protect_tree

    raw_dir = make_private_dir(folder)
    fetched = source.fetch(raw_dir, vocabulary) if progress is None else source.fetch(raw_dir, vocabulary, progress)
    protect_tree(raw_dir)
    return fetched


def write_back(
    config: ServerConfig,
    bundle: Mapping[str, Any],
    *,
    extra_measures: Sequence[Mapping[str, Any]] = (),
    echo: bool = True,
) -> WriteBackSummary:
    """Write a run's MeasureReports (the Bundle :func:`write_run` wrote, :attr:`RunFiles.bundle`) back to the
    server, with the Measures they refer to that the server lacks (``extra_measures``: those the plugins'
    instruments ship); ``echo`` prints the summary to stderr."""
    from fhir_pts.sources.server.fetch import write_back_run

    return write_back_run(config, bundle, echo=echo, extra_measures=extra_measures)


# ------------------------------------------------------------------------------------------ outputs


class RunFiles(dict[str, Path]):
    """File name -> path of what :func:`write_run` wrote; :attr:`bundle` is ``measure-reports.json`` as the dict
    written (for :func:`write_back`, without reading the file back)."""

    bundle: dict[str, Any]

    def __init__(self, files: Mapping[str, Path], bundle: dict[str, Any]) -> None:
        super().__init__(files)
        self.bundle = bundle


def in_memory_outputs(
    cohort: Cohort, outcomes: Sequence[AnalysisOutcome], *, date: Any = None, sharing: SharingPolicy | None = None
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """What :func:`write_run` writes, held in memory: the MeasureReport Bundle (``measure-reports.json``), and
    ``results.csv`` / ``problems.csv`` as DataFrames (the cohort's is ``cohort.patients``)."""
    import pandas as pd

    from fhir_pts.outputs.measure_report import build_bundle
    from fhir_pts.outputs.tables import results_frame
    from fhir_pts.problems import PROBLEM_COLUMNS

    bundle = build_bundle(list(outcomes), cohort, date=date, sharing=sharing)
    problems = pd.DataFrame([p.as_row() for p in cohort.problems], columns=list(PROBLEM_COLUMNS))
    return bundle, results_frame(outcomes), problems


def write_data_files(
    out_dir: Path | str, cohort: Cohort, outcomes: Sequence[AnalysisOutcome], bundle: Mapping[str, Any]
) -> dict[str, Path]:
    """Write the four data files of contract §4 into ``out_dir``, ``measure-reports.json`` being ``bundle``
    (built by :func:`in_memory_outputs`), complete or not at all."""
    from fhir_pts.outputs.writer import write_outputs

    return write_outputs(Path(out_dir), cohort, list(outcomes), bundle=dict(bundle))


def packaged_measure(measure_id: str) -> dict[str, Any] | None:
    """The packaged FHIR Measure of a contract measure (:mod:`fhir_pts.conformance`), None for the others."""
    try:
        from fhir_pts.conformance import measure

        return measure(measure_id)
    except (ImportError, KeyError):
        return None


def write_run(
    out_dir: Path,
    cohort: Cohort,
    outcomes: list[AnalysisOutcome],
    *,
    inputs: Sequence[Path | str] = (),
    parameters: Mapping[str, Any] | None = None,
    command: str = "run",
    report: bool = True,
    deidentify: bool = False,
    hash_patient_ids: bool = False,
    comparison: Sequence[Any] | None = None,
    sharing: Any = None,
    on_step: Callable[[str], None] | None = None,
    input_labels: Mapping[str, str] | None = None,
) -> RunFiles:
    """Write the contract's four files, then ``report.html`` and ``figures/`` (unless ``report`` is False).

    ``sharing`` (:class:`fhir_pts.outputs.aggregates.SharingPolicy`): minimum cell count and distributions of
    the aggregates shared in ``measure-reports.json`` (default: the disclosure default, no distributions).

    Returns file name → path (a :class:`RunFiles`, whose ``bundle`` is ``measure-reports.json`` as written). The
    four data files are moved into place together once all are rendered; the
    report follows, so a report never describes files that were not written. It names ``inputs`` with the
    fingerprints the engine computed while reading them (``cohort.input_fingerprints``; others are read here).
    With ``deidentify`` (``hash_patient_ids`` is the same) every output is written from the de-identified
    cohort (:mod:`fhir_pts.outputs.deidentify`: keyed pseudonyms for ids, birth year instead of birth date).
    ``on_step`` is called with the name of each part as it is written (progress). ``input_labels`` maps a
    path prefix to the one the report shows (e.g. a staging folder to the final ``--out``).
    """
    import datetime as dt

    from fhir_pts.outputs import write_outputs

    deidentify = deidentify or hash_patient_ids
    names = None
    if deidentify:
        from fhir_pts.outputs.deidentify import Deidentifier, deidentify_cohort

        names = Deidentifier.for_run().for_cohort(cohort)
        cohort = deidentify_cohort(cohort, names)
    from fhir_pts.outputs.measure_report import build_bundle

    bundle = build_bundle(outcomes, cohort, sharing=sharing)
    written = RunFiles(write_outputs(Path(out_dir), cohort, outcomes, bundle=bundle), bundle)
    if on_step is not None:
        on_step("data files")
    if report:
        from fhir_pts.engines.spark import is_remote
        from fhir_pts.outputs.report import (
            RunInfo,
            comparison_table_html,
            default_versions,
            fingerprint_inputs,
            write_report,
        )
        local_inputs = [i for i in inputs if not is_remote(i)]  # remote (hdfs://...) inputs are not fingerprinted
        files = expand_inputs(local_inputs) if local_inputs else []
        fingerprints = fingerprint_inputs(files, known=cohort.input_fingerprints)
        for old, new in (input_labels or {}).items():
            fingerprints = [(new + p[len(old) :] if p.startswith(old) else p, h) for p, h in fingerprints]
        if names is not None:  # ids in input paths (a file per patient) become their pseudonyms
            fingerprints = [(names.text(path) or path, digest) for path, digest in fingerprints]
        run_info = RunInfo(
            inputs=fingerprints,
            parameters=dict(parameters or {}),
            versions=default_versions(),
            started=dt.datetime.now(dt.UTC),
            command=command,
        )
        comparison_html = comparison_table_html(comparison) if comparison else None
        path = write_report(
            Path(out_dir),
            cohort,
            outcomes,
            run_info,
            comparison_html=comparison_html,
            hash_patient_ids=deidentify,
            on_step=on_step,
        )
        written[path.name] = path
    return written
