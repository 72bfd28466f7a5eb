"""``fhir-pts`` command line (contract §3).

Exit status (every command's ``--help`` says which apply): 0 done (problems in records are reported in
``problems.csv``, not fatal); 1 an internal failure (a bug: please report it); 2 unusable arguments, input or
``--out`` (found before anything is read where it can be) or an unreachable / refusing server; 3 the run
completed and wrote its outputs, but they are incomplete: at least one analysis failed (its error is in
``report.html`` and the MeasureReports) or a server could not give some cohort patient's data completely
or some contract inputs (``problems.csv`` says which; the numbers may be wrong; ``--allow-partial`` makes
that 0); 130 interrupted.

Every argument is checked before the input is read: a mistake costs seconds, not a whole read.

The package: :mod:`.parser` (the argparse parser, built for the one command asked), :mod:`.options` (the option
groups shared with ``serve``: hospital server, minimum cell count, windows, parameters), :mod:`.run`
(``fhir-pts run``), :mod:`.commands` (the other commands), :mod:`.exits` (exit statuses). Every command reaches
the layers below through :mod:`fhir_pts.pipeline` only (``docs/architecture.md``); the modules are imported
when their command runs, so that ``fhir-pts --help`` stays fast.
"""

from __future__ import annotations

import atexit
import gc
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fhir_pts.cli.exits import (
    EXIT_ANALYSIS_FAILED,
    EXIT_HELP,
    EXIT_INCOMPLETE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    RUN_EXIT_HELP,
    VALIDATE_EXIT_HELP,
    UsageError,
)
from fhir_pts.cli.parser import build_parser, command_of

if TYPE_CHECKING:
    import argparse

__all__ = [
    "EXIT_ANALYSIS_FAILED",
    "EXIT_HELP",
    "EXIT_INCOMPLETE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "RUN_EXIT_HELP",
    "VALIDATE_EXIT_HELP",
    "UsageError",
    "build_parser",
    "main",
]

log = logging.getLogger("fhir_pts")

#: Sub-command -> (module of :mod:`fhir_pts.cli`, function): imported when the command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "cmd_run"),
    "synth": ("commands", "cmd_synth"),
    "demo": ("commands", "cmd_demo"),
    "validate": ("commands", "cmd_validate"),
    "pool": ("commands", "cmd_pool"),
    "analyses": ("commands", "cmd_analyses"),
    "serve": ("commands", "cmd_serve"),
}


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    import importlib

    module, name = COMMANDS[command]
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return handler


def _configure(args: argparse.Namespace) -> None:
    verbosity = -1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0)
    from fhir_pts.progress import configure_logging

    configure_logging(verbosity)


#: Why the heap is frozen at exit: interpreter shutdown's full garbage collections would walk every object of
#: the run (pandas, scipy, matplotlib, the facts) only to free what the end of the process frees anyway —
#: measured ~0.9 s of a 10k run's wall time, ~0.1 s frozen.
_QUICK_EXIT = "gc.freeze at exit"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fhir-pts`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command_of(argv) or "")
    args = parser.parse_args(argv)
    _configure(args)
    atexit.unregister(gc.freeze)  # registered once, however often main runs in one process
    atexit.register(gc.freeze)  # see _QUICK_EXIT
    from fhir_pts.pipeline import InputError, OutputFolderError, PluginError, ServerError

    try:
        return _handler(args.command)(args)
    except (UsageError, InputError, ServerError, OutputFolderError, PluginError) as exc:
        print(f"fhir-pts: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fhir-pts: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # an internal failure: say what, exit 1, traceback only with -v
        if getattr(args, "verbose", 0):
            log.exception("internal failure")
        print(f"fhir-pts: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
