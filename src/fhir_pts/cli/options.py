"""Options of ``fhir-pts run`` / ``validate`` and what they turn into (windows, parameters, sharing).

The option groups ``serve`` shares (hospital server, ``--min-cell-count``) are in :mod:`fhir_pts.options`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from fhir_pts.cli.exits import UsageError
from fhir_pts.options import add_min_cell_count_argument, add_server_arguments, server_config_from_args

if TYPE_CHECKING:
    from fhir_pts.cohort.model import TimePointWindows
    from fhir_pts.pipeline import SharingPolicy

__all__ = [
    "add_min_cell_count_argument",
    "add_server_arguments",
    "parameters_from_args",
    "server_config_from_args",
    "sharing_from_args",
    "windows_from_args",
]


def parameters_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``--param MEASURE.NAME=VALUE`` options as measure id -> name -> value."""
    params: dict[str, dict[str, Any]] = {}
    for measure, name, value in args.param:
        params.setdefault(measure, {})[name] = value
    return params


def windows_from_args(args: argparse.Namespace) -> TimePointWindows:
    """The assessment windows of ``--baseline-window``, ``--followup-window`` and ``--followup-target``."""
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


def sharing_from_args(args: argparse.Namespace) -> SharingPolicy:
    """What ``measure-reports.json`` shares: ``--min-cell-count`` and ``--share-distributions``."""
    from fhir_pts.pipeline import SharingPolicy

    return SharingPolicy(min_cell_count=args.min_cell_count, share_distributions=args.share_distributions)
