"""The commands besides ``run``: ``synth``, ``demo``, ``validate``, ``pool``, ``analyses``, ``serve``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from fhir_pts.cli.exits import EXIT_OK, UsageError
from fhir_pts.cli.options import server_config_from_args, windows_from_args


def cmd_synth(args: argparse.Namespace) -> int:
    from fhir_pts.pipeline import plugin_instruments, synthesize

    if args.patients is not None and args.patients < 0:
        raise UsageError("--patients must be 0 or more")
    extra: dict[str, Any] = {} if args.noise is None else {"noise_per_patient": args.noise}
    if args.noise is not None and args.noise < 0:
        raise UsageError("--noise must be 0 or more")
    if args.patients is not None:  # a random cohort answers the installed plugins' instruments too
        plugins = plugin_instruments()
        if plugins:
            extra["instruments"] = list(plugins)
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
    from fhir_pts.cli.run import analyse_with_progress, moved, summary, write_with_progress
    from fhir_pts.pipeline import (
        comparison_rows,
        format_comparison,
        load_cohort,
        plan_analyses,
        staged_output,
        synthesize,
        write_comparison_csv,
    )

    started = time.time()
    out = Path(os.path.abspath(args.out))
    with staged_output(out, command="demo") as stage:
        cohort_file = stage / "input" / "paper-cohort.json"
        cohort_file.parent.mkdir(parents=True, exist_ok=True)
        synthesize(cohort_file, patients=None, fmt="bundle")
        plan = plan_analyses()
        cohort = load_cohort([cohort_file], instruments=plan.instruments)
        outcomes = analyse_with_progress(cohort, plan)
        rows = comparison_rows(outcomes)
        written: dict[str, Path] = write_with_progress(
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
    written = moved(written, stage, out)
    print(format_comparison(rows))
    return summary(cohort, outcomes, written, started, quiet=args.quiet)


def cmd_validate(args: argparse.Namespace) -> int:
    """``fhir-pts validate``: exit 0 when nothing failed, 1 when a check failed or a record was skipped."""
    from fhir_pts.pipeline import ServerError, expand_inputs, run_validate

    try:
        server_config = server_config_from_args(args)
    except ServerError as error:  # an unusable server configuration
        raise UsageError(str(error)) from error
    if (server_config is None) == (not args.inputs):
        raise UsageError("give either INPUT files/folders or --server URL")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    windows = windows_from_args(args)
    from fhir_pts.progress import stage_bars

    if server_config is None:
        expand_inputs(args.inputs)
    return run_validate(args.inputs, server_config, args.concept_map, windows, args.workers, args.format, args.out,
                        progress=stage_bars())


def cmd_pool(args: argparse.Namespace) -> int:
    """``fhir-pts pool``: exit 2 when the sites cannot be pooled (the message names the difference)."""
    from fhir_pts.pipeline import PoolingError, pool_paths, write_pooled

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


def cmd_analyses(args: argparse.Namespace) -> int:
    from fhir_pts.pipeline import list_analyses

    rows = [(info.id, plugin, info.title) for info, plugin in list_analyses()]
    width_id = max((len(r[0]) for r in rows), default=2)
    width_plugin = max((len(r[1]) for r in rows), default=6)
    print(f"{'id':<{width_id}}  {'plugin':<{width_plugin}}  title")
    for measure_id, plugin, title in rows:
        print(f"{measure_id:<{width_id}}  {plugin:<{width_plugin}}  {title}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from fhir_pts.serve import cmd_serve as serve

    return serve(args)
