"""Streaming writers: NDJSON per resource type (as Bulk Data writes them) and one Bundle JSON file.

Both consume an iterator of resource dicts once, holding one resource at a time (memory does not grow with the
number of patients), serialise with orjson, and write atomically: everything goes to temporary files in the
destination folder, renamed into place only when the whole stream was written; on any error the temporary
files are removed and nothing is left half-written. Output bytes depend only on the resources (gzip headers carry
no timestamp or file name), so the same input gives byte-identical files.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

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


def _file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask); mkstemp's own 0o600 would hide the output."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_path(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.fchmod(fd, _file_mode())
    os.close(fd)
    return Path(tmp)


class _TypeFile:
    """One open NDJSON (optionally gzip) temp file for a resource type."""

    def __init__(self, folder: Path, name: str, compress: bool) -> None:
        self.final = folder / name
        self.temp = _temp_path(folder, name)
        self.raw: IO[bytes] = open(self.temp, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed in close()
        self.out: IO[bytes] | gzip.GzipFile = self.raw
        if compress:
            self.out = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, compresslevel=6, mtime=0)

    def close(self) -> None:
        if self.out is not self.raw:
            self.out.close()
        self.raw.close()


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
            handle.close()
        for handle in files.values():
            os.replace(handle.temp, handle.final)
    except BaseException:
        for handle in files.values():
            handle.close()
            handle.temp.unlink(missing_ok=True)
        raise
    return SynthSummary(dict(sorted(counts.items())), sorted(h.final for h in files.values()))


def write_bundle(
    resources: Iterable[dict[str, Any]], path: Path, *, bundle_id: str = "fhir-pts-synthetic"
) -> SynthSummary:
    """Write ``resources`` as one FHIR R4 ``Bundle`` of type ``transaction`` at ``path``, streamed.

    Each entry carries ``request`` ``PUT <Type>/<id>``, so the file can be posted as is to a FHIR server to load
    the cohort (client-assigned ids); ``fhir-pts run`` reads it like any Bundle.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path.parent, path.name)
    counts: Counter[str] = Counter()
    try:
        with open(temp, "wb", buffering=_BUFFER) as out:
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
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return SynthSummary(dict(sorted(counts.items())), [path])


def write_json(resource: dict[str, Any], path: Path) -> Path:
    """Write one resource as indented JSON at ``path``, atomically; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path.parent, path.name)
    try:
        temp.write_bytes(orjson.dumps(resource, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
