"""Reading: the inputs named and estimated, the cohort built from files (by an engine) or from resources held
in memory, the vocabulary of a run over files, the cohort restricted to an index period."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts.pipeline.analysing import installed_instruments

if TYPE_CHECKING:
    from fhir_pts.cohort.model import Cohort, TimePointWindows
    from fhir_pts.engines.base import Engine
    from fhir_pts.instruments.model import Instrument
    from fhir_pts.problems import Problem
    from fhir_pts.vocabulary import ConceptMapTranslator, Vocabulary


def add_source_findings(cohort: Cohort, problems: Sequence[Problem], data_gaps: Sequence[str]) -> Cohort:
    """Add what fetching the data found (e.g. a server's export errors, the contract inputs it cannot provide)
    to the cohort: its problems first in ``cohort.problems``, its gaps to ``cohort.data_gaps``."""
    cohort.problems = [*problems, *cohort.problems]
    cohort.data_gaps = [*cohort.data_gaps, *data_gaps]
    return cohort


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
    modules = ["fhir_pts.plugin_manager", "fhir_pts.analyses.stats", "lifelines",
               "statsmodels.regression.linear_model", "statsmodels.stats.proportion",
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
