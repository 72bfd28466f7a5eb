"""What the files of a Bulk Data export say, and the raw directory made from them.

NDJSON lines of the output files; the OperationOutcome issues of the manifest's ``error`` files (problems.csv
rows, and a data gap when resources failed); the DELETE entries of its ``deleted`` files; the narrowing of the
output to the cohort (:func:`select_into`, the search mode's rules) or its plain move into the raw directory.
:mod:`.bulk` runs the export and calls these.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_pts.atomic import atomic_open
from fhir_pts.problems import Problem
from fhir_pts.vocabulary import Vocabulary

from .http import ServerError
from .rawdir import NdjsonWriter
from .search import is_index_procedure, keep, patient_of


class BulkExportError(ServerError):
    """The export could not be completed (the message says at which step)."""


@dataclass
class BulkStats:
    """What a bulk fetch did."""

    requests: int = 0
    kickoffs: int = 0
    polls: int = 0
    files_downloaded: int = 0
    files_resumed: int = 0
    bytes: int = 0
    resources: dict[str, int] | None = None
    incomplete: bool = False  # some cohort patient's data could not be exported completely (gaps too)
    refused_types: list[str] = field(default_factory=list)  # types the server refused at kick-off
    fallbacks: list[str] = field(default_factory=list)  # why an export was asked again without _typeFilter
    expired: int = 0  # exports started over because a file answered 410
    error_issues: int = 0  # OperationOutcome issues read from the manifest's error files
    deleted: int = 0  # resources listed in the manifest's deleted files
    problems: list[Problem] = field(default_factory=list)  # problems.csv rows of the export (see BulkExport)
    gaps: list[str] = field(default_factory=list)  # contract inputs the export could not provide


def _issues(outcome: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [i for i in outcome.get("issue") or [] if isinstance(i, Mapping)]


def read_error_files(paths: Sequence[Path]) -> tuple[list[tuple[str, Mapping[str, Any]]], list[Problem]]:
    """The OperationOutcome issues of the manifest's error files as ("file:line", issue), and a warning for
    each line that is not an OperationOutcome."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    problems: list[Problem] = []
    for path, number, outcome in _lines_of_type(paths, "OperationOutcome", "(bulk error file)", problems):
        found += [(f"{path.name}:{number}", issue) for issue in _issues(outcome)]
    return found, problems


def _lines_of_type(
    paths: Sequence[Path], expected: str, field_name: str, problems: list[Problem]
) -> Iterator[tuple[Path, int, Mapping[str, Any]]]:
    """(file, line number, resource) of each line of ``paths`` that is an ``expected`` resource; a warning in
    ``problems`` for each other line (it is ignored)."""
    for path in paths:
        for number, resource in numbered(path):
            if resource.get("resourceType") == expected:
                yield path, number, resource
            else:
                problems.append(Problem(str(resource.get("resourceType")), resource.get("id"), field_name,
                                        f"not {'an' if expected[0] in 'AEIOU' else 'a'} {expected}; ignored",
                                        "warning", file=path.name, line=number))


def error_problems(issues: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[list[Problem], str | None]:
    """One problem per issue of the manifest's error files, and the data gap (None when no issue is an
    ``error`` or ``fatal``: warnings only)."""
    problems = []
    failed = 0
    for where, issue in issues:
        severity = str(issue.get("severity") or "error")
        text = str(issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code"))
        bad = severity in ("error", "fatal")
        failed += bad
        file, _, line = where.rpartition(":")
        problems.append(Problem(
            "OperationOutcome", None, "(bulk export error)",
            f"the server reported {severity} ({issue.get('code')}) in the export: {text}"
            + ("; the resources it concerns were not exported" if bad else ""),
            "skipped" if bad else "warning", file=file, line=int(line) if line.isdigit() else None,
        ))
    if not failed:
        return problems, None
    first = next(str(i.get("diagnostics") or i.get("code")) for _, i in issues
                 if i.get("severity", "error") in ("error", "fatal"))
    return problems, (f"the Bulk export reported {failed} error(s) in its manifest's error files (e.g. {first}): "
                      "resources the server failed to export are missing")


def read_deleted_files(paths: Sequence[Path]) -> tuple[set[tuple[str, str]], list[Problem]]:
    """The (type, id) of every DELETE entry of the manifest's deleted files (transaction Bundles), and a
    warning for each line that is not a Bundle."""
    keys: set[tuple[str, str]] = set()
    problems: list[Problem] = []
    for _, _, bundle in _lines_of_type(paths, "Bundle", "(bulk deleted file)", problems):
        for entry in bundle.get("entry") or []:
            request = entry.get("request") or {}
            target = str(request.get("url") or entry.get("fullUrl") or "").split("?")[0]
            parts = target.split("/_history/")[0].rstrip("/").split("/")
            if str(request.get("method", "DELETE")).upper() == "DELETE" and len(parts) >= 2:
                keys.add((parts[-2], parts[-1]))
    return keys, problems


def numbered(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, resource) of an NDJSON file (lines that are not a JSON object raise)."""
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError:
                    try:  # the stdlib reads what orjson refuses in valid JSON: a lone surrogate ("\ud800"), which
                        resource = json.loads(line)  # the file pipeline then reports as a problem row
                    except ValueError:
                        raise BulkExportError(f"{path.name} line {number} is not JSON") from None
                if not isinstance(resource, dict):
                    raise BulkExportError(f"{path.name} line {number} is not a JSON object")
                yield number, resource


def lines(paths: Sequence[Path], rtype: str | None = None) -> Iterator[dict]:
    for path in paths:
        if rtype is not None and not path.name.startswith(f"{rtype}."):
            continue
        for _, resource in numbered(path):
            yield resource


def deleted_problem(resource: dict) -> Problem:
    return Problem(str(resource.get("resourceType")), resource.get("id"), "(bulk deleted)",
                   "deleted on the server (listed in the export manifest's deleted files); not counted",
                   patient_id=patient_of(resource))


def select_into(downloads: Sequence[Path], raw_dir: Path, types: set[str], vocabulary: Vocabulary | None = None,
                stats: BulkStats | None = None, deleted: Set[tuple[str, str]] = frozenset()) -> list[Path]:
    """Narrow exported files to the cohort (the search mode's rules, through the same ``vocabulary``), written
    as ``<Type>.ndjson``. A cohort patient whose Patient resource is not in the export is a problem in
    ``stats`` and marks it incomplete. Resources in ``deleted`` (the manifest's deleted files) are left out, a
    problem each."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()

    def live(r: dict) -> bool:
        if (r.get("resourceType"), r.get("id")) not in deleted:
            return True
        if stats is not None:
            stats.problems.append(deleted_problem(r))
        return False

    cohort = {patient_of(r) for r in lines(downloads, "Procedure")
              if is_index_procedure(r, vocabulary) and (r.get("resourceType"), r.get("id")) not in deleted}
    cohort.discard(None)
    writer = NdjsonWriter(raw_dir)
    try:
        for r in lines(downloads):
            rtype = r.get("resourceType")
            if rtype not in types or not live(r):
                continue
            if rtype == "Patient":
                if r.get("id") in cohort:
                    writer.add(r)
            elif keep(rtype, r, cohort, vocabulary):  # type: ignore[arg-type]
                writer.add(r)
        if "Patient" in types and stats is not None:
            for pid in sorted(cohort - writer.seen("Patient")):  # type: ignore[operator]
                stats.incomplete = True
                stats.problems.append(Problem(
                    "Patient", pid, "id",
                    "the export holds an index stenting Procedure of this patient but not the Patient: sex and "
                    "age are unknown, the patient is left out of the cohort", patient_id=pid,
                ))  # fmt: skip
        return writer.close(ensure_types=sorted(types))
    except BaseException:
        writer.abort()
        raise


def move_into(downloads: Sequence[Path], raw_dir: Path, deleted: Set[tuple[str, str]] = frozenset(),
              problems: list[Problem] | None = None) -> list[Path]:
    """Move the exported files into ``raw_dir`` as they are, leaving out resources in ``deleted``."""
    out = []
    for path in downloads:
        target = raw_dir / path.name
        if deleted:
            with atomic_open(target, "wb") as f:
                for r in lines([path]):
                    if (r.get("resourceType"), r.get("id")) in deleted:
                        if problems is not None:
                            problems.append(deleted_problem(r))
                        continue
                    f.write(orjson.dumps(r) + b"\n")
            path.unlink()
        else:
            os.replace(path, target)
        out.append(target)
    return out


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)
