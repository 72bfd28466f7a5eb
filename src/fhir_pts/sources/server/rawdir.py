"""The raw directory a server fetch writes: one NDJSON file per resource type, written atomically.

``fhir-pts run RAW_DIR`` reads it back, so a server run can be repeated offline. Resources are de-duplicated by
``(type, id, meta.versionId)`` as they arrive (the file pipeline settles remaining duplicates by version).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import orjson

from .http import ServerError

Key = tuple[str, str, str]


class NdjsonWriter:
    """Thread-safe writer of ``<Type>.ndjson`` files; nothing appears under its final name until :meth:`close`."""

    def __init__(self, raw_dir: Path, suffix: str = ".ndjson") -> None:
        self.raw_dir = Path(raw_dir)
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self._files: dict[str, IO[bytes]] = {}
        self._seen: set[Key] = set()
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.duplicates = 0

    def _part(self, rtype: str) -> Path:
        return self.raw_dir / f"{rtype}{self.suffix}.part"

    def add(self, resource: dict) -> bool:
        """Write one resource (False when it was already written)."""
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not rtype.isalpha() or not isinstance(rid, str):
            raise ServerError(f"server returned a resource without a valid resourceType/id: {str(resource)[:120]}")
        version = str((resource.get("meta") or {}).get("versionId", ""))
        line = orjson.dumps(resource) + b"\n"
        with self._lock:
            key = (rtype, rid, version)
            if key in self._seen:
                self.duplicates += 1
                return False
            self._seen.add(key)
            f = self._files.get(rtype)
            if f is None:
                f = self._files[rtype] = self._part(rtype).open("wb")
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
                    self._files[rtype] = self._part(rtype).open("wb")
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
