"""How many resources the inputs hold, estimated before reading (for a progress bar with an ETA).

The estimate samples the first MiB of up to :data:`MAX_SAMPLED` files (spread over the list): resources per
byte there (lines of NDJSON, ``"resource"`` keys of a Bundle), times the size of every file (uncompressed size
for gzip: the ISIZE trailer, exact below 4 GiB for a single-member file). Nothing is parsed; the cost is at
most 32 MiB read. The count can be off (lines of different lengths further on): a bar using it raises its
total when it is passed.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from fhir_pts.sources.files import is_ndjson

SAMPLE_BYTES = 1 << 20
MAX_SAMPLED = 32


def _uncompressed_size(path: Path) -> int:
    if not path.name.lower().endswith(".gz"):
        return path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return struct.unpack("<I", handle.read(4))[0]


def _sample(path: Path) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:  # type: ignore[operator]
        return handle.read(SAMPLE_BYTES)


def _counts(path: Path) -> tuple[int, int]:
    """(resources seen, bytes) in the first MiB of ``path``."""
    sample = _sample(path)
    marker = b"\n" if is_ndjson(path) else b'"resource"'
    return (max(sample.count(marker), 1) if sample else 0), len(sample)


def estimate_resources(files: Sequence[Path]) -> int | None:
    """An estimate of the resources in ``files`` (the output of ``expand_inputs``); None if it cannot be made.

    A sampled file counts with its own rate; the others with the pooled rate of the sampled files of their
    kind (NDJSON or Bundle), weighted by bytes.
    """
    if not files:
        return None
    try:
        step = max(1, len(files) // MAX_SAMPLED)
        own: dict[Path, float] = {}
        pooled: dict[bool, list[int]] = {True: [0, 0], False: [0, 0]}
        for path in list(files)[::step][:MAX_SAMPLED]:
            seen, size = _counts(path)
            if size:
                own[path] = seen / size
                pooled[is_ndjson(path)][0] += seen
                pooled[is_ndjson(path)][1] += size
        total = 0.0
        for path in files:
            kind = is_ndjson(path)
            seen, size = pooled[kind] if pooled[kind][1] else pooled[not kind]
            rate = own.get(path, seen / size if size else 0.0)
            total += rate * _uncompressed_size(path)
    except (OSError, EOFError, struct.error):
        return None
    return int(total) or None
