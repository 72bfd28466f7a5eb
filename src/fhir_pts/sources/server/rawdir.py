"""The raw directory a server fetch writes: one NDJSON file per resource type, written atomically.

``fhir-pts run RAW_DIR`` reads it back, so a server run can be repeated offline. Exact copies are written once
(the same ``(type, id, meta.versionId)`` and the same content); a copy that differs is written too, so that the
file pipeline settles it by version and reports the conflict as it does for files. A string the server sent
that is not valid Unicode (a lone surrogate, ``"\ud800"``) is written as it came (JSON-escaped), so the file
pipeline reports that line as it would in a file instead of the fetch failing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path

import orjson

from fhir_pts.atomic import AtomicFile, commit_all

from .http import ServerError

Key = tuple[str, str, str]


def ndjson_line(resource: dict) -> bytes:
    """One NDJSON line of ``resource``; strings that are not valid Unicode are kept, JSON-escaped."""
    try:
        return orjson.dumps(resource) + b"\n"
    except TypeError:  # orjson refuses lone surrogates; the file pipeline reports such a line
        return json.dumps(resource, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


class NdjsonWriter:
    """Thread-safe writer of ``<Type>.ndjson`` files; nothing appears under its final name until :meth:`close`."""

    def __init__(self, raw_dir: Path, suffix: str = ".ndjson") -> None:
        self.raw_dir = Path(raw_dir)
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self._files: dict[str, AtomicFile] = {}
        self._seen: dict[Key, set[bytes]] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.duplicates = 0

    def _open(self, rtype: str) -> AtomicFile:
        """The type's file, under a temporary name until :meth:`close`, readable by its owner only (patient data)."""
        return AtomicFile(self.raw_dir / f"{rtype}{self.suffix}", private=True)

    def add(self, resource: dict) -> bool:
        """Write one resource (False when it was already written)."""
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not rtype.isalpha() or not isinstance(rid, str):
            # the resource itself is not quoted: it may hold patient data
            raise ServerError(
                f"server returned a resource without a valid resourceType/id (resourceType {str(rtype)[:40]!r}, "
                f"id of type {type(rid).__name__})"
            )
        meta = resource.get("meta")
        version = str(meta.get("versionId", "")) if isinstance(meta, dict) else ""
        line = ndjson_line(resource)
        digest = hashlib.blake2b(line, digest_size=16).digest()
        with self._lock:
            key = (rtype, rid, version)
            digests = self._seen.setdefault(key, set())
            if digest in digests:
                self.duplicates += 1
                return False
            digests.add(digest)
            f = self._files.get(rtype)
            if f is None:
                f = self._files[rtype] = self._open(rtype)
            f.handle.write(line)
            self.counts[rtype] = self.counts.get(rtype, 0) + 1
            return True

    def add_many(self, resources: list[dict]) -> int:
        """Write several resources; return how many were new."""
        return sum(self.add(r) for r in resources)

    def seen(self, rtype: str) -> set[str]:
        """Ids written so far for a type."""
        with self._lock:
            return {rid for t, rid, _ in self._seen if t == rtype}

    def close(self, ensure_types: Iterable[str] = ()) -> list[Path]:
        """Flush, fsync and rename every file into place; return the final paths (sorted). A type of
        ``ensure_types`` with no resource gets an empty file (so an empty cohort is still a readable input)."""
        with self._lock:
            for rtype in ensure_types:
                if rtype not in self._files:
                    self._files[rtype] = self._open(rtype)
            files, self._files = list(self._files.values()), {}
            return sorted(commit_all(files))

    def abort(self) -> None:
        """Close and remove the partial files (after a failure)."""
        with self._lock:
            for f in self._files.values():
                f.discard()
            self._files.clear()
