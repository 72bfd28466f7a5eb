"""The run, end to end: inputs → facts → cohort → analyses → output files.

Each step is a small function so that the CLI, an embedding host and the server mode compose the same parts:

>>> cohort = load_cohort(["bundle.json"])                  # doctest: +SKIP
>>> outcomes = analyse(cohort)                             # doctest: +SKIP
>>> write_run(Path("out"), cohort, outcomes, run_info)     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy

from fhir_pts.analyses.api import AnalysisOutcome
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.engines.base import Engine, cohort_from_facts
from fhir_pts.engines.local import LocalEngine, collect_from_resources
from fhir_pts.instruments.model import Instrument
from fhir_pts.problems import Problem
from fhir_pts.vocabulary import ConceptMapTranslator, Vocabulary

__all__ = [
    "add_source_findings",
    "analyse",
    "cohort_from_facts",
    "cohort_from_resources",
    "installed_instruments",
    "load_cohort",
    "write_run",
]


def add_source_findings(cohort: Cohort, problems: Sequence[Problem], data_gaps: Sequence[str]) -> Cohort:
    """Add what fetching the data found (e.g. a server's export errors, the contract inputs it cannot provide)
    to the cohort: its problems first in ``cohort.problems``, its gaps to ``cohort.data_gaps``."""
    cohort.problems = [*problems, *cohort.problems]
    cohort.data_gaps = [*cohort.data_gaps, *data_gaps]
    return cohort


def installed_instruments(plugin_manager: pluggy.PluginManager | None = None) -> tuple[Instrument, ...]:
    """The instruments of the plugins of ``plugin_manager`` (default: the installed ones, as ``analyse`` finds
    them): Villalta and CIVIQ-20, then the plugins'. A plugin that cannot declare its instruments is left out
    with a warning naming it."""
    from fhir_pts.plugin_manager import get_plugin_manager, instruments_of

    return instruments_of(plugin_manager or get_plugin_manager())


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
    read and scored (default: :func:`installed_instruments`).
    """
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
    import importlib

    modules = ["fhir_pts.plugin_manager", "fhir_pts.analyses.stats", "lifelines", "statsmodels.api",
               "fhir.resources.R4B.bundle", "fhir.resources.R4B.measurereport", "fhir_pts.outputs"]  # fmt: skip
    if report:
        modules += ["fhir_pts.outputs.report", "fhir_pts.outputs.figures"]
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def cohort_from_resources(
    resources: Iterable[dict[str, Any]],
    *,
    concepts: Vocabulary | ConceptMapTranslator | None = None,
    windows: TimePointWindows | None = None,
    instruments: Sequence[Instrument] | None = None,
) -> Cohort:
    """Build the cohort from resources already held as dicts (an embedding host's data); ``instruments`` as
    for :func:`load_cohort`."""
    vocabulary = Vocabulary.of(concepts)
    vocabulary = vocabulary.with_instruments(installed_instruments() if instruments is None else instruments)
    cohort = cohort_from_facts(collect_from_resources(resources, vocabulary), windows, vocabulary.instruments)
    cohort.concept_maps = vocabulary.sources
    return cohort


def analyse(
    cohort: Cohort,
    analysis_ids: Sequence[str] | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    on_outcome: Callable[[AnalysisOutcome], None] | None = None,
) -> list[AnalysisOutcome]:
    """Run the selected analyses (all installed ones by default); a failing plugin does not stop the others.

    ``on_outcome`` is called with each outcome as its analysis finishes (progress).
    """
    from fhir_pts.plugin_manager import get_plugin_manager, run_analyses

    pm = plugin_manager or get_plugin_manager()
    return run_analyses(pm, cohort, analysis_ids, parameters, on_outcome)


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
) -> dict[str, Path]:
    """Write the contract's four files, then ``report.html`` and ``figures/`` (unless ``report`` is False).

    ``sharing`` (:class:`fhir_pts.outputs.aggregates.SharingPolicy`): minimum cell count and distributions of
    the aggregates shared in ``measure-reports.json`` (default: the disclosure default, no distributions).

    Returns file name → path. The four data files are moved into place together once all are rendered; the
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
    written = write_outputs(Path(out_dir), cohort, outcomes, sharing=sharing)
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
        from fhir_pts.sources.files import expand_inputs

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
