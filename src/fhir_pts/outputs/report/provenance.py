"""What the report says about the run: input fingerprints, parameters, versions, start time, command line."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts.outputs.report.values import Mono, Table

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext

#: Packages whose behaviour shapes the numbers, in the order the report lists them.
VERSIONED_PACKAGES: tuple[str, ...] = (
    "fhir-pts",
    "fhir.resources",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "lifelines",
    "matplotlib",
)


@dataclass
class RunInfo:
    """What the report says about the run: input fingerprints, parameters, versions, start time, command line.

    ``inputs`` are ``(path, fingerprint hex)`` pairs (see :func:`fingerprint_inputs`); ``parameters`` the analysis
    and time-window parameters actually used; ``versions`` package → version (see :func:`default_versions`).
    """

    inputs: list[tuple[str, str]]
    parameters: dict[str, object]
    versions: dict[str, str]
    started: datetime
    command: str


def fingerprint_inputs(
    paths: Iterable[str | Path], known: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The fingerprint of every input file (:mod:`fhir_pts.sources.fingerprint`: an XXH3-128 tree of 16 MiB
    pieces, ``python -m fhir_pts.sources.fingerprint FILE`` recomputes it).

    ``known`` maps files to the fingerprints the engine computed while reading them (the usual case: no
    second read); other files are read here, in pieces (never whole in memory). A folder stands for every
    file under it (recursively, sorted, hidden files included as the sources read them). Returns
    ``(path, hex digest)`` pairs in the order given. A missing path raises :class:`FileNotFoundError`.
    """
    from fhir_pts.sources.fingerprint import fingerprint_file

    known = known or {}
    result: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if str(file) in known:
                result.append((str(file), known[str(file)]))
            elif file.is_file():
                result.append((str(file), fingerprint_file(file)))
            else:
                raise FileNotFoundError(str(file))
    return result


def default_versions() -> dict[str, str]:
    """Versions of Python and of the packages whose behaviour shapes the numbers (absent ones are skipped)."""
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def provenance_section(ctx: ReportContext) -> dict[str, Any]:
    """The provenance section: run, parameters, software versions, input fingerprints (paths scrubbed)."""
    ri = ctx.run_info
    params = [
        [str(k), ctx.scrub(json.dumps(v, default=str, sort_keys=True) if not isinstance(v, str) else v)]
        for k, v in sorted(ri.parameters.items())
    ]
    inputs = (
        Table(
            ["Input file", "Fingerprint (XXH3-128 tree, python -m fhir_pts.sources.fingerprint)"],
            [[ctx.scrub(path), Mono(h)] for path, h in ri.inputs],
            cls="text",
            caption=f"Input fingerprints ({len(ri.inputs)} file(s))",
        )
        if ri.inputs
        else None
    )
    return {
        "run": Table(
            ["Run", ""],
            [["Started", ri.started.isoformat(timespec="seconds")], ["Command", ctx.scrub(ri.command)]],
            cls="text",
        ),
        "parameters": Table(["Parameter", "Value"], params, cls="text") if params else None,
        "software": Table(["Software", "Version"], sorted(ri.versions.items()), cls="text"),
        "inputs": inputs,
    }
