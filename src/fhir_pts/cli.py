"""``fhir-pts`` command line (contract §3).

Exit status (every command's ``--help`` says which apply): 0 done (problems in records are reported in
``problems.csv``, not fatal); 1 an internal failure (a bug: please report it); 2 unusable arguments, input or
``--out`` (found before anything is read where it can be) or an unreachable / refusing server; 3 the run
completed and wrote its outputs, but they are incomplete: at least one analysis failed (its error is in
``report.html`` and the MeasureReports) or a server could not give some cohort patient's data completely
or some contract inputs (``problems.csv`` says which; the numbers may be wrong; ``--allow-partial`` makes
that 0); 130 interrupted.

Every argument is checked before the input is read: a mistake costs seconds, not a whole read.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fhir_pts import __version__

log = logging.getLogger("fhir_pts")

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_ANALYSIS_FAILED = 0, 1, 2, 3
#: The same status when a server could not give some cohort patient's data completely (outputs written).
EXIT_INCOMPLETE = EXIT_ANALYSIS_FAILED
EXIT_PARTIAL = EXIT_INCOMPLETE

#: The exit statuses, as every ``--help`` lists them.
EXIT_HELP = """exit status:
  0    done (problems in records are listed in problems.csv, not fatal)
  1    internal failure (a bug: please report it)
  2    unusable arguments, input or --out, or a server that refuses or cannot be reached
"""
VALIDATE_EXIT_HELP = """exit status:
  0    every check passed
  1    a check failed or a record was skipped (or an internal failure: the message says which)
  2    unusable arguments or input, or a server that refuses or cannot be reached
"""
RUN_EXIT_HELP = EXIT_HELP + (
    "  3    outputs written, but incomplete: at least one analysis failed (see report.html), or the server\n"
    "       could not give every contract input or cohort patient's data completely (see problems.csv;\n"
    "       --allow-partial makes that 0)\n"
)


class UsageError(Exception):
    """Unusable arguments or input: one clear line, exit status 2."""


def _window(text: str) -> tuple[int, int]:
    try:
        start, end = (int(x) for x in text.split(":"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected START:END in days, e.g. -90:0, got {text!r}") from exc
    if start > end:
        raise argparse.ArgumentTypeError(f"window start {start} is after its end {end}")
    return start, end


def _parameter(text: str) -> tuple[str, str, Any]:
    """``MEASURE.NAME=VALUE`` (VALUE parsed as JSON when it can be, else kept as text)."""
    import json

    key, sep, value = text.partition("=")
    measure, dot, name = key.partition(".")
    if not sep or not dot or not measure or not name:
        raise argparse.ArgumentTypeError(f"expected MEASURE.NAME=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return measure, name, parsed


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="only errors; no progress bars")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more detail (repeatable)")


def _command(sub: Any, name: str, help: str, epilog: str = EXIT_HELP) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=help, description=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def _add_windows(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline-window",
        type=_window,
        default=(-90, 0),
        metavar="START:END",
        help="baseline assessment window in days from the index procedure (default -90:0)",
    )
    parser.add_argument(
        "--followup-window",
        type=_window,
        default=(60, 150),
        metavar="START:END",
        help="3-month assessment window in days from the index procedure (default 60:150)",
    )
    parser.add_argument(
        "--followup-target",
        type=int,
        default=91,
        metavar="DAY",
        help="the 3-month assessment closest to this day is used (default 91)",
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``fhir-pts`` parser; with ``command``, only that sub-command gets its full options.

    The other sub-commands are still listed (``--help``), but their options are not built: ``serve``'s come
    from :mod:`fhir_pts.serve`, whose HTTP server imports are not needed to run or list anything else.
    """
    parser = argparse.ArgumentParser(
        prog="fhir-pts",
        description="Outcome analyses of venous stenting for post-thrombotic syndrome, from FHIR R4 to MeasureReports.",
        epilog=RUN_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fhir-pts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        sub, "run", "build the cohort from FHIR files or a server and run the analyses", epilog=RUN_EXIT_HELP
    )
    run.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="FHIR Bundle JSON, NDJSON (.ndjson, .ndjson.gz) files, or folders of them (with --engine spark also "
        "hdfs://, s3a://, abfss://... paths)",
    )
    run.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder: new, empty, or the output of an earlier run (replaced as a whole when this run "
        "succeeds; a folder holding anything else is refused)",
    )
    run.add_argument(
        "--concept-map",
        action="append",
        default=[],
        metavar="FILE|CANONICAL",
        help="FHIR ConceptMap mapping site-local codes to the contract's: a JSON file, or a canonical URL "
        "(https://.../ConceptMap/x or URL|VERSION) read from the --server (repeatable)",
    )
    run.add_argument(
        "--analysis",
        action="append",
        default=None,
        metavar="ID",
        help="run only this analysis (repeatable; see 'fhir-pts analyses'); default: every installed one",
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        type=_parameter,
        metavar="MEASURE.NAME=VALUE",
        help="analysis parameter, e.g. villalta-gain-regression.terms='[\"age\"]' (repeatable; VALUE is JSON "
        "or text; default: each analysis' own defaults)",
    )
    _add_windows(run)
    run.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes reading the input (default: up to 2; see benchmarks/bench_run.py)",
    )
    run.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="where reading runs: local (this machine, default) or spark (pip install 'fhir-pts[spark]'; "
        "docs/scale.md)",
    )
    run.add_argument(
        "--spark-master",
        default=None,
        metavar="URL",
        help="with --engine spark: local[*] (default), spark://HOST:7077, yarn, k8s://..., or Spark Connect sc://HOST",
    )
    run.add_argument(
        "--deidentify",
        "--hash-patient-ids",
        dest="deidentify",
        action="store_true",
        help="de-identify every output: keyed pseudonyms instead of ids in cohort.csv, problems.csv and report.html "
        "(key: FHIR_PTS_PSEUDONYM_KEY, else random per run), birth year instead of birth date",
    )
    run.add_argument(
        "--keep-raw",
        action="store_true",
        help="with --server: keep the fetched FHIR copy in OUT/raw/ (owner-only, mode 0600: it holds names and "
        "birth dates); by default it is removed once the outputs are written",
    )
    run.add_argument("--no-report", action="store_true", help="do not write report.html, figures/ and tables/")
    run.add_argument("--allow-partial", action="store_true",
                     help="exit 0 even when the server could not provide every contract input (default: exit 3; "
                     "the outputs are marked incomplete either way)")
    from fhir_pts.disclosure import add_min_cell_count_argument

    add_min_cell_count_argument(run)
    run.add_argument(
        "--share-distributions",
        action="store_true",
        help="share the value distributions in measure-reports.json, so that pooled medians and quartiles are exact "
        "(docs/pooling.md)",
    )
    _add_server_arguments(run, bulk=True, write_back=True)
    _add_verbosity(run)

    synth = _command(sub, "synth", "write a synthetic cohort (default: the 42-patient paper cohort)")
    synth.add_argument(
        "--patients",
        type=int,
        default=None,
        metavar="N",
        help="a random cohort of N patients instead of the paper cohort (default: the paper cohort)",
    )
    synth.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    synth.add_argument(
        "--noise",
        type=float,
        default=None,
        metavar="K",
        help="unrelated resources (vital signs, labs, encounters) per patient of a random cohort "
        "(default 20; a real export has hundreds)",
    )
    synth.add_argument(
        "--format",
        choices=("bundle", "ndjson", "ndjson.gz"),
        default=None,
        help="default: a Bundle when --out ends in .json, else NDJSON per resource type",
    )
    synth.add_argument(
        "--site-codes",
        type=Path,
        default=None,
        metavar="CONCEPTMAP",
        help="give about half of the coded resources site-local codes instead of the contract's, and write the "
        "ConceptMap that maps them to this file (for run --concept-map; same numbers as without)",
    )
    synth.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE|DIR",
        help="where to write: a .json file (one Bundle) or a folder (one NDJSON file per resource type; files "
        "of the same names are replaced); no default",
    )
    _add_verbosity(synth)

    demo = _command(sub, "demo", "paper cohort -> run -> side by side with the published abstract")
    demo.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder (as for run: new, empty or an earlier output, replaced as a whole); besides the run's "
        "files it holds input/paper-cohort.json (the synthetic cohort) and abstract-comparison.csv",
    )
    _add_verbosity(demo)

    validate = _command(
        sub,
        "validate",
        "check the input against the profiles and the contract; per patient, why in or out",
        epilog=VALIDATE_EXIT_HELP,
    )
    validate.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="as for run: FHIR files or folders")
    validate.add_argument("--concept-map", action="append", default=[], metavar="FILE|CANONICAL",
                          help="FHIR ConceptMap mapping site-local codes: a file, or a canonical URL read from "
                          "the --server (repeatable)")  # fmt: skip
    validate.add_argument("--format", choices=("text", "csv", "json"), default="text", help="default text")
    validate.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here (default: stdout)")
    _add_windows(validate)
    validate.add_argument("--workers", type=int, default=1, help="processes reading the input (default 1)")
    _add_server_arguments(validate, bulk=True)  # validate fetches as run does (search or Bulk); writes nothing back
    _add_verbosity(validate)

    pool = _command(
        sub, "pool", "pool several sites' measure-reports.json into the results of their union (docs/pooling.md)"
    )
    pool.add_argument(
        "reports", nargs="+", type=Path, metavar="REPORT", help="a site's measure-reports.json, or its output folder"
    )
    pool.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    pool.add_argument("--no-report", action="store_true", help="do not write report.html")
    _add_verbosity(pool)

    analyses = _command(sub, "analyses", "list the installed analyses (built-in and plugins)")
    _add_verbosity(analyses)

    serve = _command(sub, "serve", "serve the analyses as a FHIR R4 server ($evaluate-measure; docs/serve.md)")
    if command in (None, "serve"):
        from fhir_pts.serve import add_serve_arguments

        add_serve_arguments(serve)
        _add_verbosity(serve)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command word of ``argv`` (the first argument that is not an option), if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _add_server_arguments(parser: argparse.ArgumentParser, *, bulk: bool = False, write_back: bool = False) -> None:
    from fhir_pts.sources.server.config import add_server_arguments

    add_server_arguments(parser, bulk=bulk, write_back=write_back)


def _configure(args: argparse.Namespace) -> None:
    verbosity = -1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0)
    from fhir_pts.progress import configure_logging

    configure_logging(verbosity)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv) or "")
    args = parser.parse_args(argv)
    _configure(args)
    handlers = {"run": cmd_run, "synth": cmd_synth, "demo": cmd_demo, "analyses": cmd_analyses, "serve": cmd_serve}
    handlers["validate"] = cmd_validate
    handlers["pool"] = cmd_pool
    from fhir_pts.outputs.staging import OutputFolderError
    from fhir_pts.plugin_manager import PluginError
    from fhir_pts.sources.files import InputError
    from fhir_pts.sources.server.errors import ServerError

    try:
        return handlers[args.command](args)
    except (UsageError, InputError, ServerError, OutputFolderError, PluginError) as exc:
        print(f"fhir-pts: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fhir-pts: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal failure: say what, exit 1, traceback only with -v
        if getattr(args, "verbose", 0):
            log.exception("internal failure")
        print(f"fhir-pts: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


def _parameters(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    for measure, name, value in args.param:
        params.setdefault(measure, {})[name] = value
    return params


def _windows(args: argparse.Namespace) -> Any:
    from fhir_pts.cohort.model import TimePointWindows

    if not args.followup_window[0] <= args.followup_target <= args.followup_window[1]:
        raise UsageError(
            f"--followup-target {args.followup_target} lies outside --followup-window "
            f"{args.followup_window[0]}:{args.followup_window[1]}"
        )
    return TimePointWindows(
        baseline_start=args.baseline_window[0],
        baseline_end=args.baseline_window[1],
        followup_target=args.followup_target,
        followup_start=args.followup_window[0],
        followup_end=args.followup_window[1],
    )


def _read(inputs: Sequence[Path | str], vocabulary: Any, windows: Any, engine: Any, local: bool) -> Any:
    """Read the inputs into the cohort with ``engine``, with a progress bar on a terminal (for local files an
    estimated total, hence an ETA)."""
    from fhir_pts.pipeline import load_cohort
    from fhir_pts.progress import phase

    estimate = None
    if local:
        from fhir_pts.sources.estimate import estimate_resources
        from fhir_pts.sources.files import expand_inputs

        files = expand_inputs(list(inputs))
        estimate = estimate_resources(files)
        log.info("reading %d file(s), about %s resources", len(files), f"{estimate:,}" if estimate else "?")
    with phase("Reading FHIR", total=estimate, unit=" resources", unit_scale=True) as bar:
        cohort = load_cohort(inputs, vocabulary=vocabulary, windows=windows, progress=bar.update, engine=engine)
    log.info("%d patients with an index procedure; %d problems", len(cohort), len(cohort.problems))
    return cohort


def _analyse(cohort: Any, analysis_ids: Sequence[str] | None, parameters: Any, pm: Any, total: int) -> list[Any]:
    from fhir_pts.pipeline import analyse
    from fhir_pts.progress import phase

    with phase("Analyses", total=total, unit=" analyses") as bar:

        def done(outcome: Any) -> None:
            bar.update(1)
            log.debug("analysis %s: %s", outcome.info.id, "ok" if outcome.ok else f"failed: {outcome.error}")

        return analyse(cohort, analysis_ids, parameters, pm, on_outcome=done)


def _write(stage: Path, cohort: Any, outcomes: list[Any], report: bool, **kwargs: Any) -> dict[str, Path]:
    from fhir_pts.pipeline import write_run
    from fhir_pts.progress import phase

    steps = 7 if report else 1  # data files, four figures, tables, the page
    with phase("Writing outputs", total=steps, unit=" parts") as bar:

        def step(name: str) -> None:
            bar.step(name)
            log.debug("written: %s", name)

        return write_run(stage, cohort, outcomes, report=report, on_step=step, **kwargs)


def _moved(written: dict[str, Path], stage: Path, out: Path) -> dict[str, Path]:
    """The written files' paths once the staging folder has become ``out``."""
    return {name: out / path.relative_to(stage) for name, path in written.items()}


def cmd_run(args: argparse.Namespace) -> int:
    from fhir_pts.outputs.staging import staged_output
    from fhir_pts.pipeline import installed_instruments
    from fhir_pts.plugin_manager import get_plugin_manager, select_analyses
    from fhir_pts.sources.files import expand_inputs
    from fhir_pts.sources.server.config import server_config_from_args

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
    windows = _windows(args)
    pm = get_plugin_manager()
    parameters = _parameters(args)
    selected = select_analyses(pm, args.analysis, parameters)
    source = None
    if server_config is None:
        from fhir_pts.vocabulary import Vocabulary

        if args.engine == "local":
            expand_inputs(list(args.inputs))  # missing paths, unaccepted names, FHIR XML: exit 2 now
        vocabulary = Vocabulary.build(args.concept_map)
    else:
        from fhir_pts.sources.server import ServerSource

        source = ServerSource.open(server_config)
        # one vocabulary (ConceptMaps, installed instruments) for the server and the files door
        vocabulary = source.vocabulary(args.concept_map).with_instruments(installed_instruments())
    from fhir_pts.engines import make_engine
    from fhir_pts.pipeline import warm_up

    if args.engine == "local":  # imports for the analyses run while the worker processes read
        engine = make_engine("local", workers=args.workers, while_reading=lambda: warm_up(report=not args.no_report))
    else:
        engine = make_engine(args.engine, spark_master=args.spark_master)
    with staged_output(args.out, command="run") as stage:
        inputs: list[Path | str] = [text if args.engine == "spark" else Path(text) for text in args.inputs]
        fetched = None
        if source is not None:
            from fhir_pts.sources.private_files import make_private_dir, protect_tree

            raw_dir = make_private_dir(stage / "raw")  # PHI: owner-only, removed after the run unless --keep-raw
            from fhir_pts.progress import stage_bars

            fetched = source.fetch(raw_dir, vocabulary, progress=stage_bars())
            protect_tree(raw_dir)
            inputs = fetched.paths
        cohort = _read(inputs, vocabulary, windows, engine, local=args.engine == "local")
        if fetched is not None:
            from fhir_pts.pipeline import add_source_findings

            add_source_findings(cohort, fetched.problems, fetched.gaps)
        outcomes = _analyse(cohort, args.analysis, parameters, pm, len(selected))
        written = _write(
            stage,
            cohort,
            outcomes,
            not args.no_report,
            inputs=inputs,
            parameters=_run_parameters(args, windows, vocabulary),
            command="run",
            deidentify=args.deidentify,
            sharing=_sharing(args),
            input_labels={str(stage): str(Path(os.path.abspath(args.out)))},
        )
        if server_config is not None and not args.keep_raw:
            import shutil

            shutil.rmtree(stage / "raw", ignore_errors=True)
    written = _moved(written, stage, Path(os.path.abspath(args.out)))
    if server_config is not None and getattr(args, "write_back", False):
        from fhir_pts.sources.server import write_back_run

        shipped = [m for instrument in cohort.instruments for m in instrument.measures]
        write_back_run(server_config, written["measure-reports.json"], extra_measures=shipped)
    status = _summary(cohort, outcomes, written, started, quiet=args.quiet)
    if fetched is not None and (fetched.incomplete or cohort.data_gaps):
        for gap in cohort.data_gaps:
            print(f"fhir-pts: incomplete data: {gap}", file=sys.stderr)
        if not args.allow_partial:
            print("fhir-pts: the server could not give every contract input or cohort patient's data completely "
                  f"(see problems.csv); the results are marked incomplete: exit status {EXIT_INCOMPLETE} "
                  "(--allow-partial accepts them)", file=sys.stderr)  # fmt: skip
            return EXIT_INCOMPLETE
    return status


def _sharing(args: argparse.Namespace) -> Any:
    from fhir_pts.outputs.aggregates import SharingPolicy

    return SharingPolicy(min_cell_count=args.min_cell_count, share_distributions=args.share_distributions)


def cmd_pool(args: argparse.Namespace) -> int:
    """``fhir-pts pool``: exit 2 when the sites cannot be pooled (the message names the difference)."""
    from fhir_pts.pool import PoolingError, pool_paths, write_pooled

    try:
        result = pool_paths(args.reports)
    except PoolingError as exc:
        raise UsageError(f"cannot pool: {exc}") from exc
    written = write_pooled(result, args.out, report=not args.no_report)
    if not args.quiet:
        inexact = sum(not p.exact for m in result.measures for p in m.statistics)
        total = sum(len(m.statistics) for m in result.measures)
        print(
            f"{len(result.sites)} sites, {len(result.measures)} measures pooled; {total - inexact}/{total} statistics "
            "exact",
            file=sys.stderr,
        )
        for name, path in written.items():
            print(f"  {name}: {path}", file=sys.stderr)
    return EXIT_OK


def _run_parameters(args: argparse.Namespace, windows: Any, vocabulary: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "windows": asdict(windows),
        "analyses": args.analysis or "all",
        "analysis parameters": _parameters(args),
        "concept maps": vocabulary.provenance(),
        "min cell count (shared aggregates)": args.min_cell_count,
        "distributions shared": args.share_distributions,
    }


def _summary(cohort: Any, outcomes: Sequence[Any], written: dict[str, Path], started: float, quiet: bool) -> int:
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


def cmd_synth(args: argparse.Namespace) -> int:
    from fhir_pts.synth import synthesize

    if args.patients is not None and args.patients < 0:
        raise UsageError("--patients must be 0 or more")
    extra: dict[str, Any] = {} if args.noise is None else {"noise_per_patient": args.noise}
    if args.noise is not None and args.noise < 0:
        raise UsageError("--noise must be 0 or more")
    if args.patients is not None:  # a random cohort answers the installed plugins' instruments too
        from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
        from fhir_pts.pipeline import installed_instruments

        plugins = [i for i in installed_instruments() if i.id not in {b.id for b in BUILTIN_INSTRUMENTS}]
        if plugins:
            extra["instruments"] = plugins
    out: Path = args.out
    bundle = args.format == "bundle" or (args.format is None and out.name.lower().endswith(".json"))
    if bundle and out.is_dir():
        raise UsageError(f"--out {out} is a folder; a Bundle is written to a .json file")
    if not bundle and out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; NDJSON is written into a folder (or give --out FILE.json)")
    if not _writable_target(out):
        raise UsageError(f"--out {out}: cannot write there (permission denied)")
    summary = synthesize(out, patients=args.patients, seed=args.seed, fmt=args.format,
                         site_codes=args.site_codes, **extra)  # fmt: skip
    if not args.quiet:
        print(summary, file=sys.stderr)
    return EXIT_OK


def _writable_target(path: Path) -> bool:
    """Whether ``path`` (a file or folder to create or replace) can be written: its nearest existing ancestor."""
    probe = path if path.exists() else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def cmd_demo(args: argparse.Namespace) -> int:
    from fhir_pts.outputs.abstract_comparison import comparison_rows, format_comparison, write_comparison_csv
    from fhir_pts.outputs.staging import staged_output
    from fhir_pts.pipeline import load_cohort
    from fhir_pts.synth import synthesize

    started = time.time()
    out = Path(os.path.abspath(args.out))
    with staged_output(out, command="demo") as stage:
        cohort_file = stage / "input" / "paper-cohort.json"
        cohort_file.parent.mkdir(parents=True, exist_ok=True)
        synthesize(cohort_file, patients=None, fmt="bundle")
        cohort = load_cohort([cohort_file])
        from fhir_pts.plugin_manager import get_plugin_manager, select_analyses

        pm = get_plugin_manager()
        outcomes = _analyse(cohort, None, None, pm, len(select_analyses(pm)))
        rows = comparison_rows(outcomes)
        written = _write(
            stage,
            cohort,
            outcomes,
            True,
            inputs=[cohort_file],
            parameters={"cohort": "paper cohort (fhir-pts synth)"},
            command="demo",
            comparison=rows,
            input_labels={str(stage): str(out)},
        )
        write_comparison_csv(stage / "abstract-comparison.csv", rows)
        written["abstract-comparison.csv"] = stage / "abstract-comparison.csv"
        written["input"] = cohort_file
    written = _moved(written, stage, out)
    print(format_comparison(rows))
    return _summary(cohort, outcomes, written, started, quiet=args.quiet)


def cmd_validate(args: argparse.Namespace) -> int:
    """``fhir-pts validate``: exit 0 when nothing failed, 1 when a check failed or a record was skipped."""
    from fhir_pts.sources.server import ServerError, server_config_from_args
    from fhir_pts.validate import run_validate

    try:
        server_config = server_config_from_args(args)
    except ServerError as error:  # an unusable server configuration
        raise UsageError(str(error)) from error
    if (server_config is None) == (not args.inputs):
        raise UsageError("give either INPUT files/folders or --server URL")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    windows = _windows(args)
    from fhir_pts.progress import stage_bars

    if server_config is None:
        from fhir_pts.sources.files import expand_inputs

        expand_inputs(list(args.inputs))
    return run_validate(args.inputs, server_config, args.concept_map, windows, args.workers, args.format, args.out,
                        progress=stage_bars())


def cmd_analyses(args: argparse.Namespace) -> int:
    from fhir_pts.plugin_manager import get_plugin_manager, list_analyses

    rows = [(info.id, plugin, info.title) for info, plugin in list_analyses(get_plugin_manager())]
    width_id = max((len(r[0]) for r in rows), default=2)
    width_plugin = max((len(r[1]) for r in rows), default=6)
    print(f"{'id':<{width_id}}  {'plugin':<{width_plugin}}  title")
    for measure_id, plugin, title in rows:
        print(f"{measure_id:<{width_id}}  {plugin:<{width_plugin}}  {title}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from fhir_pts.serve import cmd_serve as serve

    return serve(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
