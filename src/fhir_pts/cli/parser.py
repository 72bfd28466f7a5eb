"""The ``fhir-pts`` argument parser: every sub-command listed, only the asked one's options built."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fhir_pts import __version__
from fhir_pts.cli.exits import EXIT_HELP, RUN_EXIT_HELP, VALIDATE_EXIT_HELP
from fhir_pts.cli.options import add_min_cell_count_argument, add_server_arguments


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


def _add_out(parser: argparse.ArgumentParser, metavar: str, help: str, *, required: bool = True) -> None:
    parser.add_argument("--out", type=Path, required=required, default=None, metavar=metavar, help=help)


def _add_concept_map(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--concept-map", action="append", default=[], metavar="FILE|CANONICAL", help=help)


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
    _add_out(run, "DIR", "output folder: new, empty, or the output of an earlier run (replaced as a whole when this "
             "run succeeds; a folder holding anything else is refused)")
    _add_concept_map(run, "FHIR ConceptMap mapping site-local codes to the contract's: a JSON file, or a canonical "
                     "URL (https://.../ConceptMap/x or URL|VERSION) read from the --server (repeatable)")
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
    add_min_cell_count_argument(run)
    run.add_argument(
        "--share-distributions",
        action="store_true",
        help="share the value distributions in measure-reports.json, so that pooled medians and quartiles are exact "
        "(docs/pooling.md)",
    )
    add_server_arguments(run, bulk=True, write_back=True)
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
    _add_out(synth, "FILE|DIR", "where to write: a .json file (one Bundle) or a folder (one NDJSON file per resource "
             "type; files of the same names are replaced); no default")
    _add_verbosity(synth)

    demo = _command(sub, "demo", "paper cohort -> run -> side by side with the published abstract")
    _add_out(demo, "DIR", "output folder (as for run: new, empty or an earlier output, replaced as a whole); besides "
             "the run's files it holds input/paper-cohort.json (the synthetic cohort) and abstract-comparison.csv")
    _add_verbosity(demo)

    validate = _command(
        sub,
        "validate",
        "check the input against the profiles and the contract; per patient, why in or out",
        epilog=VALIDATE_EXIT_HELP,
    )
    validate.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="as for run: FHIR files or folders")
    _add_concept_map(validate, "FHIR ConceptMap mapping site-local codes: a file, or a canonical URL read from the "
                     "--server (repeatable)")
    validate.add_argument("--format", choices=("text", "csv", "json"), default="text", help="default text")
    _add_out(validate, "FILE", "write here (default: stdout)", required=False)
    _add_windows(validate)
    validate.add_argument("--workers", type=int, default=1, help="processes reading the input (default 1)")
    add_server_arguments(validate, bulk=True)  # validate fetches as run does (search or Bulk); writes nothing back
    _add_verbosity(validate)

    pool = _command(
        sub, "pool", "pool several sites' measure-reports.json into the results of their union (docs/pooling.md)"
    )
    pool.add_argument(
        "reports", nargs="+", type=Path, metavar="REPORT", help="a site's measure-reports.json, or its output folder"
    )
    _add_out(pool, "DIR", "output folder")
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


def command_of(argv: Sequence[str]) -> str | None:
    """The sub-command word of ``argv`` (the first argument that is not an option), if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)

