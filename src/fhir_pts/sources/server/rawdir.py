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
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import orjson

from .http import ServerError

Key = tuple[str, str, str]


def ndjson_line(resource: dict) -> bytes:
    """One NDJSON line of ``resource``; strings that are not valid Unicode are kept, JSON-escaped."""
    try:
        return orjson.dumps(resource) + b"\n"
    except TypeError:  # orjson refuses lone surrogates; the file pipeline reports such a line
        return json.dumps(resource, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def _private_open(path: Path) -> IO[bytes]:
    """``path`` opened for writing, created readable by its owner only (it holds patient data)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


class NdjsonWriter:
    """Thread-safe writer of ``<Type>.ndjson`` files; nothing appears under its final name until :meth:`close`."""

    def __init__(self, raw_dir: Path, suffix: str = ".ndjson") -> None:
        self.raw_dir = Path(raw_dir)
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self._files: dict[str, IO[bytes]] = {}
        self._seen: dict[Key, set[bytes]] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.duplicates = 0

    def _part(self, rtype: str) -> Path:
        return self.raw_dir / f"{rtype}{self.suffix}.part"

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
                f = self._files[rtype] = _private_open(self._part(rtype))
            f.write(line)
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
        out = []
        with self._lock:
            for rtype in ensure_types:
                if rtype not in self._files:
                    self._files[rtype] = _private_open(self._part(rtype))
            for rtype, f in self._files.items():
                f.flush()
                os.fsync(f.fileno())
                f.close()
                final = self.raw_dir / f"{rtype}{self.suffix}"
                os.replace(self._part(rtype), final)
                out.append(final)
            self._files.clear()
        return sorted(out)

    def abort(self) -> None:
        """Close and remove the partial files (after a failure)."""
        with self._lock:
            for rtype, f in self._files.items():
                f.close()
                self._part(rtype).unlink(missing_ok=True)
            self._files.clear()
