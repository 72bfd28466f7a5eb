"""What the report says about the run: input fingerprints, parameters, versions, start time, command line."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

#: Bytes read at a time when fingerprinting an input (inputs are never held whole in memory).
READ_CHUNK = 1 << 20
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

    ``inputs`` are ``(path, sha256 hex)`` pairs (see :func:`fingerprint_inputs`); ``parameters`` the analysis
    and time-window parameters actually used; ``versions`` package → version (see :func:`default_versions`).
    """

    inputs: list[tuple[str, str]]
    parameters: dict[str, object]
    versions: dict[str, str]
    started: datetime
    command: str


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_inputs(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """SHA-256 of every input file, read in 1 MiB chunks (never whole in memory).

    A folder stands for every file under it (recursively, sorted, hidden files included as the sources
    read them). Returns ``(path, hex digest)`` pairs in the order given. A missing path raises
    :class:`FileNotFoundError`.
    """
    result: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                result.append((str(child), _sha256_file(child)))
        elif path.is_file():
            result.append((str(path), _sha256_file(path)))
        else:
            raise FileNotFoundError(str(path))
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
