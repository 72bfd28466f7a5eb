"""``fhir-pts run``: check every argument, then read (files or a server), analyse, write, write back.

Every step is a :mod:`fhir_pts.pipeline` function; this module adds the command line around them: the checks
of the arguments (exit 2 before anything is read), progress bars, the summary and the exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts.cli.exits import EXIT_ANALYSIS_FAILED, EXIT_INCOMPLETE, EXIT_OK, UsageError
from fhir_pts.cli.options import parameters_from_args, server_config_from_args, sharing_from_args, windows_from_args

if TYPE_CHECKING:
    from fhir_pts.analyses.api import AnalysisOutcome
    from fhir_pts.cohort.model import Cohort, TimePointWindows
    from fhir_pts.pipeline import AnalysisPlan, RunFiles

log = logging.getLogger("fhir_pts")


def _read(inputs: Sequence[Path | str], vocabulary: Any, windows: Any, engine: Any, local: bool,
          instruments: Any = None) -> Cohort:  # fmt: skip
    """Read the inputs into the cohort with ``engine``, with a progress bar on a terminal (for local files an
    estimated total, hence an ETA)."""
    from fhir_pts.pipeline import estimate_inputs, load_cohort
    from fhir_pts.progress import phase

    estimate = None
    if local:
        files, estimate = estimate_inputs(inputs)
        log.info("reading %d file(s), about %s resources", files, f"{estimate:,}" if estimate else "?")
    with phase("Reading FHIR", total=estimate, unit=" resources", unit_scale=True) as bar:
        cohort = load_cohort(inputs, vocabulary=vocabulary, windows=windows, progress=bar.update, engine=engine,
                             instruments=instruments)  # fmt: skip
    log.info("%d patients with an index procedure; %d problems", len(cohort), len(cohort.problems))
    return cohort


def analyse_with_progress(cohort: Cohort, plan: AnalysisPlan) -> list[AnalysisOutcome]:
    """Run the plan's analyses with a progress bar."""
    from fhir_pts.pipeline import analyse
    from fhir_pts.progress import phase

    with phase("Analyses", total=len(plan.selected), unit=" analyses") as bar:

        def done(outcome: AnalysisOutcome) -> None:
            bar.update(1)
            log.debug("analysis %s: %s", outcome.info.id, "ok" if outcome.ok else f"failed: {outcome.error}")

        return analyse(cohort, plan=plan, on_outcome=done)


def write_with_progress(stage: Path, cohort: Cohort, outcomes: list[AnalysisOutcome], report: bool,
                        **kwargs: Any) -> RunFiles:  # fmt: skip
    """:func:`fhir_pts.pipeline.write_run` into ``stage`` with a progress bar."""
    from fhir_pts.pipeline import write_run
    from fhir_pts.progress import phase

    steps = 7 if report else 1  # data files, four figures, tables, the page
    with phase("Writing outputs", total=steps, unit=" parts") as bar:

        def step(name: str) -> None:
            bar.step(name)
            log.debug("written: %s", name)

        return write_run(stage, cohort, outcomes, report=report, on_step=step, **kwargs)


def moved(written: dict[str, Path], stage: Path, out: Path) -> dict[str, Path]:
    """The written files' paths once the staging folder has become ``out``."""
    return {name: out / path.relative_to(stage) for name, path in written.items()}


def cmd_run(args: argparse.Namespace) -> int:
    from fhir_pts.pipeline import (
        add_source_findings,
        expand_inputs,
        fetch_raw,
        file_vocabulary,
        make_engine,
        open_server,
        plan_analyses,
        staged_output,
        warm_up,
        write_back,
    )

    started = time.time()
    # every argument is checked before anything is read or fetched
    server_config = server_config_from_args(args)
    if server_config is None and not args.inputs:
        raise UsageError("give INPUT files/folders, or --server URL")
    if server_config is not None and args.inputs:
        raise UsageError("give either INPUT files/folders or --server, not both")
    if server_config is None and getattr(args, "write_back", None):
        raise UsageError("--write-back needs --server URL (it writes the MeasureReports back to that server)")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.spark_master is not None and args.engine != "spark":
        raise UsageError("--spark-master needs --engine spark")
    windows = windows_from_args(args)
    parameters = parameters_from_args(args)
    plan = plan_analyses(args.analysis, parameters)  # the plugins describe their analyses once per run
    source = None
    if server_config is None:
        if args.engine == "local":
            expand_inputs(args.inputs)  # missing paths, unaccepted names, FHIR XML: exit 2 now
        vocabulary = file_vocabulary(args.concept_map)
    else:
        source = open_server(server_config)
        # one vocabulary (ConceptMaps, installed instruments) for the server and the files door
        vocabulary = source.vocabulary(args.concept_map).with_instruments(plan.instruments)
    if args.engine == "local":  # imports for the analyses run while the worker processes read
        engine = make_engine("local", workers=args.workers, while_reading=lambda: warm_up(report=not args.no_report))
    else:
        engine = make_engine(args.engine, spark_master=args.spark_master)
    with staged_output(args.out, command="run") as stage:
        inputs: list[Path | str] = [text if args.engine == "spark" else Path(text) for text in args.inputs]
        fetched = None
        if source is not None:
            from fhir_pts.progress import stage_bars

            # PHI: owner-only, removed after the run unless --keep-raw
            fetched = fetch_raw(source, stage / "raw", vocabulary, progress=stage_bars())
            inputs = list(fetched.paths)
        cohort = _read(inputs, vocabulary, windows, engine, local=args.engine == "local", instruments=plan.instruments)
        if fetched is not None:
            add_source_findings(cohort, fetched.problems, fetched.gaps)
        outcomes = analyse_with_progress(cohort, plan)
        written = write_with_progress(
            stage,
            cohort,
            outcomes,
            not args.no_report,
            inputs=inputs,
            parameters=run_parameters(args, windows, vocabulary),
            command="run",
            deidentify=args.deidentify,
            sharing=sharing_from_args(args),
            input_labels={str(stage): str(Path(os.path.abspath(args.out)))},
        )
        if server_config is not None and not args.keep_raw:
            import shutil

            shutil.rmtree(stage / "raw", ignore_errors=True)
    bundle = written.bundle
    files = moved(written, stage, Path(os.path.abspath(args.out)))
    if server_config is not None and getattr(args, "write_back", False):
        shipped = [m for instrument in cohort.instruments for m in instrument.measures]
        write_back(server_config, bundle, extra_measures=shipped)  # the Bundle written, not read back
    status = summary(cohort, outcomes, files, started, quiet=args.quiet)
    if fetched is not None and (fetched.incomplete or cohort.data_gaps):
        for gap in cohort.data_gaps:
            print(f"fhir-pts: incomplete data: {gap}", file=sys.stderr)
        if not args.allow_partial:
            print("fhir-pts: the server could not give every contract input or cohort patient's data completely "
                  f"(see problems.csv); the results are marked incomplete: exit status {EXIT_INCOMPLETE} "
                  "(--allow-partial accepts them)", file=sys.stderr)  # fmt: skip
            return EXIT_INCOMPLETE
    return status


def run_parameters(args: argparse.Namespace, windows: TimePointWindows, vocabulary: Any) -> dict[str, Any]:
    """The run's settings as the report lists them."""
    from dataclasses import asdict

    return {
        "windows": asdict(windows),
        "analyses": args.analysis or "all",
        "analysis parameters": parameters_from_args(args),
        "concept maps": vocabulary.provenance(),
        "min cell count (shared aggregates)": args.min_cell_count,
        "distributions shared": args.share_distributions,
    }


def summary(cohort: Cohort, outcomes: Sequence[AnalysisOutcome], written: dict[str, Path], started: float,
            quiet: bool) -> int:  # fmt: skip
    """Print what the run did; return its exit status (3 when an analysis failed)."""
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        print(f"fhir-pts: analysis {outcome.info.id} failed: {outcome.error}", file=sys.stderr)
    if not quiet:
        print(
            f"{len(cohort)} patients with an index procedure; {len(outcomes) - len(failed)}/{len(outcomes)} "
            f"analyses; {len(cohort.problems)} problems; {time.time() - started:.1f} s",
            file=sys.stderr,
        )
        for name, path in written.items():
            print(f"  {name}: {path}", file=sys.stderr)
    if failed:
        print(
            f"fhir-pts: {len(failed)} analysis(es) failed; outputs written (exit status {EXIT_ANALYSIS_FAILED})",
            file=sys.stderr,
        )
        return EXIT_ANALYSIS_FAILED
    return EXIT_OK
