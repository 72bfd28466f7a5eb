"""Input fingerprints computed in the pass that reads the files: a tree of xxh3-128 digests over 16 MiB pieces.

The report names every input file with a fingerprint, so that a run can be matched to the exact data it read.
Hashing the inputs in a second pass doubled the reading (SHA-256 of a 11.5 GB export costs ~9 CPU-seconds);
here the reading engine hashes the bytes it reads anyway, also when it splits one big file across processes.

Definition (``ALGORITHM``, reproducible with ``python -m fhir_pts.sources.fingerprint FILE...``):

- the file's bytes *as stored* (a ``.gz`` file's compressed bytes) are cut into pieces of ``PIECE_BYTES``
  (16 MiB; the last piece may be shorter; an empty file has no piece);
- each piece is hashed with XXH3-128 (the 16-byte canonical, big-endian digest);
- the fingerprint is the hex XXH3-128 of the concatenated piece digests.

XXH3 is not a cryptographic hash: it identifies inputs (a changed or different file gives a different
fingerprint, with 128-bit collision odds), it does not protect them against a forger. Pieces make the
fingerprint independent of how the reading is split: a reader of the byte range of pieces ``k..m`` hashes
exactly those pieces, and the pieces of all ranges, in order, give the file's fingerprint.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import xxhash

ALGORITHM = "xxh3-128 tree of 16 MiB pieces"
#: Size of the pieces hashed one by one (bytes).
PIECE_BYTES = 16 * 1024 * 1024


class PieceHasher:
    """Hashes the bytes ``[start, end)`` of a file, fed in file order, piece by piece.

    ``start`` must be a piece boundary (a multiple of ``piece``, default :data:`PIECE_BYTES`); ``end`` a piece
    boundary or ``None`` (the end of the file). Bytes fed outside ``[start, end)`` are ignored, so a reader may feed
    everything it reads. :meth:`digests` gives the digests of the pieces of the range, in order.
    """

    def __init__(self, start: int = 0, end: int | None = None, piece: int | None = None) -> None:
        self.piece = piece or PIECE_BYTES
        if start % self.piece:
            raise ValueError(f"start {start} is not a multiple of the piece size {self.piece}")
        self.start, self.end = start, end
        self.position = start  # next byte expected, as a file offset
        self._digests: list[bytes] = []
        self._piece = xxhash.xxh3_128()
        self._piece_fill = 0

    def feed(self, offset: int, data: bytes | memoryview) -> None:
        """Feed ``data``, the bytes of the file from ``offset``; parts before or after the range are ignored.

        :raises ValueError: ``data`` would leave a gap (its range starts after the next byte expected).
        """
        view = memoryview(data)
        if offset + len(view) <= self.position or (self.end is not None and self.position >= self.end):
            return
        if offset > self.position:
            raise ValueError(f"gap in hashed bytes: expected offset {self.position}, got {offset}")
        view = view[self.position - offset :]
        if self.end is not None:
            view = view[: max(0, self.end - self.position)]
        while len(view):
            room = self.piece - self._piece_fill
            part = view[:room]
            self._piece.update(part)
            self._piece_fill += len(part)
            self.position += len(part)
            view = view[len(part) :]
            if self._piece_fill == self.piece:
                self._digests.append(self._piece.digest())
                self._piece = xxhash.xxh3_128()
                self._piece_fill = 0

    def digests(self) -> list[bytes]:
        """The piece digests of the range, the last (shorter) piece included; call once all bytes are fed."""
        if self._piece_fill:
            return [*self._digests, self._piece.digest()]
        return list(self._digests)


def combine(piece_digests: Iterable[bytes]) -> str:
    """The fingerprint (hex) of a file from the digests of all its pieces, in order."""
    return xxhash.xxh3_128(b"".join(piece_digests)).hexdigest()


def fingerprint_file(path: Path | str, read_size: int = PIECE_BYTES) -> str:
    """The fingerprint of one file, read whole (for files no reading pass has hashed)."""
    hasher = PieceHasher()
    offset = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(read_size):
            hasher.feed(offset, chunk)
            offset += len(chunk)
    return combine(hasher.digests())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fhir_pts.sources.fingerprint FILE...``: print ``fingerprint  path`` per file."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(f"usage: python -m fhir_pts.sources.fingerprint FILE...  ({ALGORITHM})", file=sys.stderr)
        return 2
    for name in args:
        print(f"{fingerprint_file(name)}  {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
