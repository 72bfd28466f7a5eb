"""Streaming writers: NDJSON per resource type (as Bulk Data writes them) and one Bundle JSON file.

Both consume an iterator of resource dicts once, holding one resource at a time (memory does not grow with the
number of patients), serialise with orjson, and write atomically: everything goes to temporary files in the
destination folder, renamed into place only when the whole stream was written; on any error the temporary
files are removed and nothing is left half-written. Output bytes depend only on the resources (gzip headers carry
no timestamp or file name), so the same input gives byte-identical files.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from fhir_pts.atomic import AtomicFile, atomic_write_bytes, commit_all

Format = Literal["bundle", "ndjson", "ndjson.gz"]
_BUFFER = 1 << 20


@dataclass
class SynthSummary:
    """What a synthesis wrote: ``counts`` of resources per resource type and the ``files`` written."""

    counts: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def resources(self) -> int:
        """Total number of resources written."""
        return sum(self.counts.values())

    @property
    def patients(self) -> int:
        """Number of Patient resources written."""
        return self.counts.get("Patient", 0)

    def __str__(self) -> str:
        per_type = ", ".join(f"{kind} {count:,}" for kind, count in self.counts.items())
        if not self.files:
            return "wrote nothing"
        where = self.files[0] if len(self.files) == 1 else f"{len(self.files)} files in {self.files[0].parent}"
        return f"wrote {self.resources:,} resources ({per_type}) to {where}"


class _TypeFile:
    """One open NDJSON (optionally gzip) temporary file for a resource type."""

    def __init__(self, folder: Path, name: str, compress: bool) -> None:
        self.file = AtomicFile(folder / name, buffering=_BUFFER)
        self.out: IO[bytes] | gzip.GzipFile = self.file.handle
        if compress:
            self.out = gzip.GzipFile(filename="", mode="wb", fileobj=self.file.handle, compresslevel=6, mtime=0)

    def finish(self) -> None:
        """End the gzip stream (the temporary file itself is closed by :func:`~fhir_pts.atomic.commit_all`)."""
        if self.out is not self.file.handle:
            self.out.close()


def write_ndjson(resources: Iterable[dict[str, Any]], folder: Path, *, compress: bool = False) -> SynthSummary:
    """Write ``resources`` as ``folder/<ResourceType>.ndjson`` (``.ndjson.gz`` when ``compress``), one per line.

    The folder is created if needed; existing files of the same names are replaced, other files are left alone.
    Returns the counts per type and the files written (sorted by name).
    """
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if compress else ".ndjson"
    files: dict[str, _TypeFile] = {}
    counts: Counter[str] = Counter()
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    try:
        for resource in resources:
            kind = resource["resourceType"]
            handle = files.get(kind)
            if handle is None:
                handle = files[kind] = _TypeFile(folder, f"{kind}{suffix}", compress)
            handle.out.write(dumps(resource, option=newline))
            counts[kind] += 1
        for handle in files.values():
            handle.finish()
    except BaseException:
        for handle in files.values():
            handle.file.discard()
        raise
    return SynthSummary(dict(sorted(counts.items())), sorted(commit_all(h.file for h in files.values())))


def write_bundle(
    resources: Iterable[dict[str, Any]], path: Path, *, bundle_id: str = "fhir-pts-synthetic"
) -> SynthSummary:
    """Write ``resources`` as one FHIR R4 ``Bundle`` of type ``transaction`` at ``path``, streamed.

    Each entry carries ``request`` ``PUT <Type>/<id>``, so the file can be posted as is to a FHIR server to load
    the cohort (client-assigned ids); ``fhir-pts run`` reads it like any Bundle.
    """
    counts: Counter[str] = Counter()
    with AtomicFile(path, buffering=_BUFFER) as file:
        out = file.handle
        head = {"resourceType": "Bundle", "id": bundle_id, "type": "transaction"}
        out.write(orjson.dumps(head)[:-1] + b',"entry":[\n')
        first = True
        for resource in resources:
            kind = resource["resourceType"]
            entry = {"resource": resource, "request": {"method": "PUT", "url": f"{kind}/{resource['id']}"}}
            out.write((b"" if first else b",\n") + orjson.dumps(entry))
            first = False
            counts[kind] += 1
        out.write(b"\n]}\n")
    return SynthSummary(dict(sorted(counts.items())), [path])


def write_json(resource: dict[str, Any], path: Path) -> Path:
    """Write one resource as indented JSON at ``path``, atomically; returns ``path``."""
    return atomic_write_bytes(path, orjson.dumps(resource, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
