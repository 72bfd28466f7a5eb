"""``fhir-pts`` command line (contract §3).

Exit status: 0 the run completed (problems in records are reported, not fatal); 2 unusable arguments or
unreadable input; 1 an internal failure; 3 the run completed on incomplete data — the server could not provide
some contract inputs (a type it does not hold, files its Bulk export failed) or some cohort patient's data
completely: outputs are written and marked incomplete, problems.csv says what is missing (the numbers may be
wrong); ``--allow-partial`` makes that 0.
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

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
EXIT_PARTIAL = EXIT_INCOMPLETE


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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``fhir-pts`` parser; with ``command``, only that sub-command gets its full options.

    The other sub-commands are still listed (``--help``), but their options are not built: ``serve``'s come
    from :mod:`fhir_pts.serve`, whose HTTP server imports are not needed to run or list anything else.
    """
    parser = argparse.ArgumentParser(
        prog="fhir-pts",
        description="Outcome analyses of venous stenting for post-thrombotic syndrome, from FHIR R4 to MeasureReports.",
    )
    parser.add_argument("--version", action="version", version=f"fhir-pts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="build the cohort from FHIR files or a server and run the analyses")
    run.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="FHIR Bundle JSON, NDJSON (.ndjson, .ndjson.gz) files, or folders of them (with --engine spark also "
        "hdfs://, s3a://, abfss://... paths)",
    )
    run.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
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
        help="run only this analysis (repeatable); default: every installed one",
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        type=_parameter,
        metavar="MEASURE.NAME=VALUE",
        help="analysis parameter, e.g. villalta-gain-regression.terms='[\"age\"]' (repeatable)",
    )
    run.add_argument(
        "--baseline-window",
        type=_window,
        default=(-90, 0),
        metavar="START:END",
        help="baseline assessment window in days from the index procedure (default -90:0)",
    )
    run.add_argument(
        "--followup-window",
        type=_window,
        default=(60, 150),
        metavar="START:END",
        help="3-month assessment window in days (default 60:150)",
    )
    run.add_argument(
        "--followup-target",
        type=int,
        default=91,
        metavar="DAY",
        help="the 3-month assessment closest to this day is used (default 91)",
    )
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
    run.add_argument("--no-report", action="store_true", help="do not write report.html and figures/")
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
    _add_server_arguments(run)
    _add_verbosity(run)

    synth = sub.add_parser("synth", help="write a synthetic cohort (default: the 42-patient paper cohort)")
    synth.add_argument(
        "--patients",
        type=int,
        default=None,
        metavar="N",
        help="a random cohort of N patients instead of the paper cohort",
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
    synth.add_argument("--out", type=Path, required=True, metavar="FILE|DIR")
    _add_verbosity(synth)

    demo = sub.add_parser("demo", help="paper cohort -> run -> side by side with the published abstract")
    demo.add_argument("--out", type=Path, required=True, metavar="DIR")
    _add_verbosity(demo)

    validate = sub.add_parser(
        "validate", help="check the input against the profiles and the contract; per patient, why in or out"
    )
    validate.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="as for run: FHIR files or folders")
    validate.add_argument("--concept-map", action="append", default=[], metavar="FILE|CANONICAL",
                          help="FHIR ConceptMap mapping site-local codes: a file, or a canonical URL read from "
                          "the --server (repeatable)")  # fmt: skip
    validate.add_argument("--format", choices=("text", "csv", "json"), default="text", help="default text")
    validate.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here instead of stdout")
    validate.add_argument("--baseline-window", type=_window, default=(-90, 0), metavar="START:END")
    validate.add_argument("--followup-window", type=_window, default=(60, 150), metavar="START:END")
    validate.add_argument("--followup-target", type=int, default=91, metavar="DAY")
    validate.add_argument("--workers", type=int, default=1, help="processes reading the input (default 1)")
    _add_server_arguments(validate)
    _add_verbosity(validate)

    pool = sub.add_parser(
        "pool", help="pool several sites' measure-reports.json into the results of their union (docs/pooling.md)"
    )
    pool.add_argument(
        "reports", nargs="+", type=Path, metavar="REPORT", help="a site's measure-reports.json, or its output folder"
    )
    pool.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    pool.add_argument("--no-report", action="store_true", help="do not write report.html")
    _add_verbosity(pool)

    analyses = sub.add_parser("analyses", help="list the installed analyses (built-in and plugins)")
    _add_verbosity(analyses)

    serve = sub.add_parser("serve", help="serve the analyses as a FHIR R4 server ($evaluate-measure; docs/serve.md)")
    if command in (None, "serve"):
        from fhir_pts.serve import add_serve_arguments

        add_serve_arguments(serve)
        _add_verbosity(serve)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command word of ``argv`` (the first argument that is not an option), if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    from fhir_pts.sources.server.config import add_server_arguments

    add_server_arguments(parser)


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
    from fhir_pts.sources.files import InputError
    from fhir_pts.sources.server.errors import ServerError

    try:
        return handlers[args.command](args)
    except (UsageError, InputError, ServerError) as exc:
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


def cmd_run(args: argparse.Namespace) -> int:
    from fhir_pts.cohort.model import TimePointWindows
    from fhir_pts.pipeline import analyse, installed_instruments, load_cohort, warm_up, write_run

    started = time.time()
    from fhir_pts.sources.server.config import server_config_from_args

    server_config = server_config_from_args(args)
    if server_config is None and not args.inputs:
        raise UsageError("give INPUT files/folders, or --server URL")
    if server_config is not None and args.inputs:
        raise UsageError("give either INPUT files/folders or --server, not both")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.spark_master is not None and args.engine != "spark":
        raise UsageError("--spark-master needs --engine spark")
    windows = TimePointWindows(
        baseline_start=args.baseline_window[0],
        baseline_end=args.baseline_window[1],
        followup_target=args.followup_target,
        followup_start=args.followup_window[0],
        followup_end=args.followup_window[1],
    )
    from fhir_pts.engines import make_engine

    if args.engine == "local":  # imports for the analyses run while the worker processes read
        engine = make_engine("local", workers=args.workers, while_reading=lambda: warm_up(report=not args.no_report))
    else:
        engine = make_engine(args.engine, spark_master=args.spark_master)
    inputs: list[Path | str] = [text if args.engine == "spark" else Path(text) for text in args.inputs]
    fetched = None
    if server_config is not None:
        from fhir_pts.sources.server import ServerSource

        source = ServerSource.open(server_config)
        # one vocabulary (ConceptMaps, installed instruments) for the server and the files door
        vocabulary = source.vocabulary(args.concept_map).with_instruments(installed_instruments())
        from fhir_pts.sources.private_files import make_private_dir, protect_tree

        raw_dir = make_private_dir(args.out / "raw")  # PHI: owner-only, removed after the run unless --keep-raw
        from fhir_pts.progress import stage_bars

        fetched = source.fetch(raw_dir, vocabulary, progress=stage_bars())
        protect_tree(raw_dir)
        inputs = fetched.paths
    else:
        from fhir_pts.vocabulary import Vocabulary

        vocabulary = Vocabulary.build(args.concept_map)
    from fhir_pts.progress import progress

    with progress(desc="Reading FHIR", unit=" resources") as bar:
        cohort = load_cohort(inputs, vocabulary=vocabulary, windows=windows, progress=bar.update, engine=engine)
    if fetched is not None:
        from fhir_pts.pipeline import add_source_findings

        add_source_findings(cohort, fetched.problems, fetched.gaps)
    from fhir_pts.plugin_manager import get_plugin_manager, list_analyses

    pm = get_plugin_manager()
    if args.analysis:
        known = {info.id for info, _ in list_analyses(pm)}
        unknown = [a for a in args.analysis if a not in known]
        if unknown:
            raise UsageError(f"unknown analysis {', '.join(unknown)}; installed: {', '.join(sorted(known))}")
    outcomes = analyse(cohort, args.analysis, _parameters(args), pm)
    written = write_run(
        args.out,
        cohort,
        outcomes,
        inputs=inputs,
        parameters=_run_parameters(args, windows, vocabulary),
        command="run",
        report=not args.no_report,
        deidentify=args.deidentify,
        sharing=_sharing(args),
    )
    if server_config is not None and not args.keep_raw:
        import shutil

        shutil.rmtree(args.out / "raw", ignore_errors=True)
    if server_config is not None and getattr(args, "write_back", False):
        from fhir_pts.sources.server import write_back_run

        shipped = [m for instrument in cohort.instruments for m in instrument.measures]
        write_back_run(server_config, written["measure-reports.json"], extra_measures=shipped)
    _summary(cohort, outcomes, written, started, quiet=args.quiet)
    if fetched is not None and (fetched.incomplete or cohort.data_gaps):
        for gap in cohort.data_gaps:
            print(f"fhir-pts: incomplete data: {gap}", file=sys.stderr)
        if not args.allow_partial:
            print("fhir-pts: the server could not give every contract input or cohort patient's data completely "
                  f"(see problems.csv); the results are marked incomplete: exit status {EXIT_INCOMPLETE} "
                  "(--allow-partial accepts them)", file=sys.stderr)  # fmt: skip
            return EXIT_INCOMPLETE
    return EXIT_OK


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


def _summary(cohort: Any, outcomes: Sequence[Any], written: dict[str, Path], started: float, quiet: bool) -> None:
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        print(f"fhir-pts: analysis {outcome.info.id} failed: {outcome.error}", file=sys.stderr)
    if quiet:
        return
    print(
        f"{len(cohort)} patients with an index procedure; {len(outcomes) - len(failed)}/{len(outcomes)} analyses; "
        f"{len(cohort.problems)} problems; {time.time() - started:.1f} s",
        file=sys.stderr,
    )
    for name, path in written.items():
        print(f"  {name}: {path}", file=sys.stderr)


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
    summary = synthesize(args.out, patients=args.patients, seed=args.seed, fmt=args.format,
                         site_codes=args.site_codes, **extra)  # fmt: skip
    if not args.quiet:
        print(summary, file=sys.stderr)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from fhir_pts.outputs.abstract_comparison import comparison_rows, format_comparison, write_comparison_csv
    from fhir_pts.pipeline import analyse, load_cohort, write_run
    from fhir_pts.synth import synthesize

    started = time.time()
    out: Path = args.out
    cohort_file = out / "input" / "paper-cohort.json"
    cohort_file.parent.mkdir(parents=True, exist_ok=True)
    synthesize(cohort_file, patients=None, fmt="bundle")
    cohort = load_cohort([cohort_file])
    outcomes = analyse(cohort)
    rows = comparison_rows(outcomes)
    table = format_comparison(rows)
    written = write_run(
        out,
        cohort,
        outcomes,
        inputs=[cohort_file],
        parameters={"cohort": "paper cohort (fhir-pts synth)"},
        command="demo",
        comparison=rows,
    )
    write_comparison_csv(out / "abstract-comparison.csv", rows)
    written["abstract-comparison.csv"] = out / "abstract-comparison.csv"
    print(table)
    _summary(cohort, outcomes, written, started, quiet=args.quiet)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """``fhir-pts validate``: exit 0 when nothing failed, 1 when a check failed or a record was skipped."""
    from fhir_pts.cohort.model import TimePointWindows
    from fhir_pts.sources.server import ServerError, server_config_from_args
    from fhir_pts.validate import run_validate

    try:
        server_config = server_config_from_args(args)
    except ServerError as error:  # an unusable server configuration
        raise UsageError(str(error)) from error
    if (server_config is None) == (not args.inputs):
        raise UsageError("give either INPUT files/folders or --server URL")
    if getattr(args, "write_back", None):
        raise UsageError("validate writes nothing back to the server: drop --write-back")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    windows = TimePointWindows(args.baseline_window[0], args.baseline_window[1], args.followup_target,
                               args.followup_window[0], args.followup_window[1])  # fmt: skip
    from fhir_pts.progress import stage_bars

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
