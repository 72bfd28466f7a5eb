"""Writing: the contract's four data files (:func:`write_data_files`), the same held in memory
(:func:`in_memory_outputs`), and a whole run's output folder with its report (:func:`write_run`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts.pipeline.reading import expand_inputs

if TYPE_CHECKING:
    import pandas as pd

    from fhir_pts.analyses.api import AnalysisOutcome
    from fhir_pts.cohort.model import Cohort
    from fhir_pts.outputs.aggregates import SharingPolicy


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
