"""The exit statuses of ``fhir-pts`` (as every ``--help`` lists them) and the one usage error."""

from __future__ import annotations

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_ANALYSIS_FAILED = 0, 1, 2, 3
#: The same status when a server could not give some cohort patient's data completely (outputs written).
EXIT_INCOMPLETE = EXIT_ANALYSIS_FAILED
EXIT_PARTIAL = EXIT_INCOMPLETE
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130

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
