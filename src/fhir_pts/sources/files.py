"""Reading FHIR files: Bundle JSON, single-resource JSON, NDJSON (plain or gzip), and folders of them.

Accepted files (contract §3, INPUT):

- ``.json`` / ``.json.gz``: a ``Bundle`` of any type (``entry[].resource``; Bundles nested in entries are
  expanded too) or a single resource;
- ``.ndjson`` / ``.jsonl`` / ``.ndjson.gz`` / ``.jsonl.gz``: one resource a line, as Bulk Data writes them,
  streamed line by line (memory stays flat whatever the file size).

Every resource is yielded as a :class:`RawResource` with its place in the input: ``file`` and ``line``
(1-based line of an NDJSON file; 1-based entry index of a Bundle, the outer entry for nested Bundles; ``1``
for a single-resource file). A malformed NDJSON line is not fatal: it becomes a :class:`~fhir_pts.problems.Problem`
(``resource_type`` ``"?"``, ``field`` ``json``) and reading goes on. An input that cannot be used at all
(missing path, unreadable file, a ``.json`` file that is not JSON or not a FHIR resource, a broken gzip
stream) raises :class:`InputError`, which the CLI turns into exit status 2.
"""

from __future__ import annotations

import io
import logging
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from fhir_pts.errors import InputError
from fhir_pts.problems import Problem
from fhir_pts.sources.blocks import (
    BLOCK_SIZE,
    GZIP_ERRORS,
    count_lines,
    gzip_reader,
    is_gzip,
    iter_ndjson_blocks,
    line_blocks,
    open_binary,
)
from fhir_pts.sources.fingerprint import PieceHasher
from fhir_pts.sources.prefilter import RESOURCE_LINE_PREFIXES, CandidateFilter, newlines

log = logging.getLogger(__name__)

NDJSON_SUFFIXES: tuple[str, ...] = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
JSON_SUFFIXES: tuple[str, ...] = (".json", ".json.gz")
XML_SUFFIXES: tuple[str, ...] = (".xml", ".xml.gz")
#: What the error says about FHIR XML (a file named .xml, or content that starts with '<').
XML_NOT_SUPPORTED = "FHIR XML is not supported; convert to JSON"
#: Size of the blocks an NDJSON file is read in (bytes).


class NotFhirError(InputError):
    """A file that is valid JSON but not a FHIR resource (e.g. a Bulk Data manifest or log in an export folder)."""


class RawResource(NamedTuple):
    """One resource as read: the parsed JSON object and where it was found (``line`` is 1-based)."""

    resource: dict[str, Any]
    file: str
    line: int


def is_ndjson(path: Path) -> bool:
    """Whether ``path`` is read as NDJSON (by its name)."""
    name = path.name.lower()
    return name.endswith(NDJSON_SUFFIXES)


def is_fhir_file(path: Path) -> bool:
    """Whether ``path``'s name is one of the accepted FHIR file names."""
    name = path.name.lower()
    return name.endswith(NDJSON_SUFFIXES) or name.endswith(JSON_SUFFIXES)


def expand_inputs(paths: Sequence[Path | str]) -> list[Path]:
    """The FHIR files to read for the INPUT arguments ``paths``, in reading order.

    Files are taken as given (they must have an accepted name); folders are searched recursively and their
    FHIR files taken in sorted path order. Arguments keep their order (a later argument is read later, so
    it wins duplicate ties); a file reached twice is read once, at its first place.

    :raises InputError: a path does not exist, a file has no accepted name, a folder holds no FHIR file, or
        no path was given.
    """
    if not paths:
        raise InputError("no INPUT given: expected FHIR Bundle JSON or NDJSON files or folders")
    files: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted((p for p in path.rglob("*") if p.is_file() and is_fhir_file(p)), key=lambda p: p.as_posix())
            xml = next((p for p in sorted(path.rglob("*")) if p.name.lower().endswith(XML_SUFFIXES)), None)
            if xml is not None:  # never read half a folder: its XML resources would silently be lost
                raise InputError(f"{xml}: {XML_NOT_SUPPORTED} (found in the INPUT folder {path})")
            if not found:
                raise InputError(
                    f"{path}: folder holds no FHIR file (expected .json, .json.gz, .ndjson, .ndjson.gz or .jsonl)"
                )
            for file in found:
                add(file)
        elif path.is_file():
            if path.name.lower().endswith(XML_SUFFIXES):
                raise InputError(f"{path}: {XML_NOT_SUPPORTED}")
            if not is_fhir_file(path):
                raise InputError(
                    f"{path}: not a FHIR file name (expected .json, .json.gz, .ndjson, .ndjson.gz or .jsonl)"
                )
            add(path)
        elif path.exists():
            raise InputError(f"{path}: not a regular file or folder")
        else:
            raise InputError(f"{path}: no such file or folder")
    return files


def malformed_line_problem(error: Exception | str, file: str, line: int) -> Problem:
    """The problem reported for an NDJSON line that is not a JSON object."""
    return Problem("?", None, "json", f"line is not a JSON object: {error}", file=file, line=line)


def parse_line(data: bytes, file: str, line: int) -> RawResource | Problem:
    """Parse one NDJSON line into a :class:`RawResource`, or a :class:`Problem` saying why it is not one."""
    try:
        resource = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        return malformed_line_problem(error, file, line)
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return Problem(
            "?",
            None,
            "resourceType",
            "line is JSON but not a FHIR resource (expected an object with a resourceType)",
            file=file,
            line=line,
        )
    return RawResource(resource, file, line)


def _bundle_resources(
    resource: dict[str, Any], file: str, line: int | None, problems: list[Problem] | None = None
) -> Iterator[RawResource]:
    """The resources of ``resource`` (itself, or a Bundle's entries, recursively).

    An entry's resource without a ``resourceType`` is yielded all the same (the adapters report it); an entry
    with no resource object at all (other than a ``DELETE`` request, which carries none) is a problem in
    ``problems`` (logged without the file name when ``problems`` is None).
    """
    if resource.get("resourceType") != "Bundle":
        yield RawResource(resource, file, line if line is not None else 1)
        return
    entries = resource.get("entry") or []
    if not isinstance(entries, list):
        entries = [entries]
    for index, entry in enumerate(entries, start=1):
        inner = entry.get("resource") if isinstance(entry, dict) else None
        where = line if line is not None else index
        if isinstance(inner, dict):
            yield from _bundle_resources(inner, file, where, problems)
            continue
        request = entry.get("request") if isinstance(entry, dict) else None
        if isinstance(request, dict) and request.get("method") == "DELETE":
            continue
        problem = Problem("?", None, f"entry[{index - 1}].resource",
                          "missing or not a JSON object: expected a FHIR resource; entry skipped",
                          file=file, line=where)  # fmt: skip
        if problems is not None:
            problems.append(problem)
        else:
            log.warning("Bundle entry %d skipped: %s", index, problem.reason)


def iter_json_file(
    path: Path, problems: list[Problem] | None = None, hasher: PieceHasher | None = None
) -> Iterator[RawResource]:
    """The resources of a Bundle / single-resource ``.json`` (or ``.json.gz``) file (entries that hold no
    resource are appended to ``problems``).

    ``hasher`` is fed the file's bytes as stored (see :func:`iter_ndjson_blocks`).

    :raises InputError: unreadable, not JSON, or not a FHIR resource.
    """
    try:
        if hasher is None:
            with open_binary(path) as stream:
                data = stream.read()
        else:
            with open(path, "rb") as raw:
                data = raw.read()
            hasher.feed(0, data)
            if is_gzip(path):
                with gzip_reader(io.BytesIO(data)) as stream:
                    data = stream.read()
    except (OSError, EOFError, zlib.error, *GZIP_ERRORS) as error:
        raise InputError(f"{path}: cannot be read ({error})") from error
    yield from iter_json_bytes(data, str(path), problems)


def iter_json_bytes(data: bytes, file: str, problems: list[Problem] | None = None) -> Iterator[RawResource]:
    """The resources of the (uncompressed) bytes of a Bundle / single-resource JSON file named ``file`` (entries
    that hold no resource are appended to ``problems``).

    :raises InputError: not JSON; :class:`NotFhirError`: JSON but not a FHIR resource.
    """
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        hint = "; one resource a line must be named .ndjson or .jsonl" if b"}\n{" in data[:1_000_000] else ""
        if data.lstrip()[:1] == b"<":
            hint = f"; {XML_NOT_SUPPORTED}"
        raise InputError(f"{file}: not valid JSON ({error}){hint}") from error
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise NotFhirError(f"{file}: not a FHIR resource (expected a JSON object with a resourceType, e.g. a Bundle)")
    yield from _bundle_resources(document, file, None, problems)


def iter_ndjson_file(
    path: Path,
    *,
    candidates: CandidateFilter | None = None,
    problems: list[Problem] | None = None,
    on_lines: Callable[[int], None] | None = None,
    start: int = 0,
    end: int | None = None,
    first_line: int = 1,
    on_physical: Callable[[int], None] | None = None,
    skip_non_fhir: bool = False,
    hasher: PieceHasher | None = None,
) -> Iterator[RawResource]:
    """The resources of an NDJSON file, streamed block by block.

    :param candidates: when given, only lines this pre-filter selects are parsed; the others are counted
        (``on_lines``) and skipped. The last line of the file or range is always parsed, so a truncated
        download is reported.
    :param problems: list the problems of malformed lines are appended to (logged when ``None``).
    :param on_lines: called with the number of non-blank lines (resources) of each block read.
    :param start, end, first_line: read only the byte range ``[start, end)``, whose first line has the
        1-based number ``first_line`` (used to split a big file across processes).
    :param on_physical: called with the number of physical lines (blank ones included) of each block.
    :param skip_non_fhir: when the first line is a JSON object without ``resourceType`` (a Bulk Data log or
        manifest found in a folder), report one problem for the file and read nothing of it.
    :param hasher: fed the bytes read, for the input's fingerprint (see :func:`iter_ndjson_blocks`).
    """
    file = str(path)
    line_base = first_line
    whole_file = start == 0 and (end is None or path.name.lower().endswith(".gz") or end >= os.path.getsize(path))
    # lines parsed / malformed lines that do not even start like a JSON object / malformed lines that do (a broken
    # record, e.g. a lone surrogate: a problem row) — to tell a file of which no line is JSON
    tally = [0, 0, 0]
    skipped = 0
    first = True
    for block, last in line_blocks(path, start, end, BLOCK_SIZE, hasher):
        if first and (whole_file or (skip_non_fhir and start == 0)):
            opening = bytes(block)
            if skip_non_fhir and start == 0 and _first_line_not_fhir(opening):
                if problems is not None:
                    problems.append(not_fhir_file_problem(file))
                return
            if whole_file and opening.lstrip()[:1] == b"<":
                raise InputError(f"{path}: {XML_NOT_SUPPORTED}")
        first = False
        if candidates is None:
            data = bytes(block)
            physical, resources = count_lines(data)
            selected: list[tuple[int, bytes]] = list(enumerate(data.split(b"\n")[:physical]))
        else:
            selected, physical, resources = candidates.scan(block)
            if not skipped and not tally[0]:  # until a line parses: did the pre-filter pass over any line?
                skipped = resources - sum(1 for _, line in selected if line.strip())
        if last and candidates is not None:
            # The last non-blank line of the file (or range) is checked even when the filter skipped it.
            stripped = bytes(block).rstrip(b"\r\n")
            last_index = newlines(stripped)
            final = stripped[stripped.rfind(b"\n") + 1 :]
            already = any(index == last_index for index, _ in selected[-1:])
            if not already and final.strip() and _looks_truncated(final):
                selected = [*selected, (last_index, final)]
        del block  # a view of the read buffer: released before the next block is read
        for index, line in selected:
            if line.strip():
                yield from _parsed(line, file, line_base + index, problems, tally)
        if on_lines is not None:
            on_lines(resources)
        if on_physical is not None:
            on_physical(physical)
        line_base += physical
    if whole_file and tally[1] and not tally[0] and not tally[2] and not skipped:
        raise InputError(f"{path}: no line is JSON ({tally[1]} line(s) read): not an NDJSON file")


def not_fhir_file_problem(file: str) -> Problem:
    """The problem reported for a file found in a folder that is JSON but holds no FHIR resource."""
    return Problem(
        "?", None, "resourceType", "file is JSON but not FHIR (expected resources with a resourceType); file skipped",
        file=file,
    )  # fmt: skip


def ndjson_file_is_not_fhir(path: Path) -> bool:
    """Whether the first line of an NDJSON file is a JSON object without ``resourceType`` (a Bulk Data log or
    manifest); such a file found in a folder is reported once and skipped.

    :raises InputError: the file cannot be read.
    """
    block = next(iter_ndjson_blocks(path, block_size=64 * 1024), b"")
    return _first_line_not_fhir(block)


def resources_of_line(line: bytes, file: str, number: int, problems: list[Problem]) -> Iterator[RawResource]:
    """The resources of one NDJSON line (a Bundle's entries, all at ``number``); a line that is not a FHIR
    resource is appended to ``problems`` instead."""
    return _parsed(line, file, number, problems)


def looks_truncated(line: bytes) -> bool:
    """Whether a (last) NDJSON line looks cut off: it does not end with ``}``."""
    return _looks_truncated(line)


def _first_line_not_fhir(block: bytes) -> bool:
    first = next((line for line in block.split(b"\n", 8)[:8] if line.strip()), b"")
    if not first or first.startswith(RESOURCE_LINE_PREFIXES):
        return False
    try:
        parsed = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and "resourceType" not in parsed


def _looks_truncated(line: bytes) -> bool:
    return not line.rstrip().endswith(b"}")


def _parsed(
    line: bytes, file: str, number: int, problems: list[Problem] | None, tally: list[int] | None = None
) -> Iterator[RawResource]:
    parsed = parse_line(line, file, number)
    if tally is not None:
        tally[0 if not isinstance(parsed, Problem) else 2 if line.lstrip()[:1] == b"{" else 1] += 1
    if isinstance(parsed, Problem):
        if problems is not None:
            problems.append(parsed)
        else:
            log.warning("NDJSON line %d skipped: %s", number, parsed.reason)  # no file name: it may hold PHI
        return
    if parsed.resource.get("resourceType") == "Bundle":
        yield from _bundle_resources(parsed.resource, file, number, problems)
    else:
        yield parsed


def iter_resources(
    path: Path | str,
    *,
    candidates: CandidateFilter | None = None,
    problems: list[Problem] | None = None,
    on_lines: Callable[[int], None] | None = None,
) -> Iterator[RawResource]:
    """The resources of one FHIR file (Bundle / resource JSON, or NDJSON), in file order.

    NDJSON is streamed (memory flat), gzip-compressed files are read through :mod:`gzip`. Malformed NDJSON
    lines are appended to ``problems`` as :class:`Problem` s (``resource_type`` ``"?"``, ``field`` ``json``)
    and reading goes on. ``candidates`` (NDJSON only) skips lines that cannot matter before parsing them.
    ``on_lines`` is called with the number of resources (NDJSON: non-blank lines) read.

    :raises InputError: the file is unusable (see the module docstring).
    """
    path = Path(path)
    if is_ndjson(path):
        yield from iter_ndjson_file(path, candidates=candidates, problems=problems, on_lines=on_lines)
        return
    count = 0
    for raw in iter_json_file(path, problems):
        count += 1
        yield raw
    if on_lines is not None:
        on_lines(count)
