"""Input fingerprints: a tree of XXH3-128 digests over fixed pieces, the same however the reading is split."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import xxhash

from fhir_pts.sources import fingerprint
from fhir_pts.sources.fingerprint import PieceHasher, combine, fingerprint_file


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(fingerprint, "PIECE_BYTES", 64)
    return 64


def test_definition_by_hand(tmp_path: Path, small_pieces: int) -> None:
    data = bytes(range(256)) * 2 + b"tail"  # 516 bytes: 8 whole pieces of 64 and one of 4
    path = tmp_path / "f.ndjson"
    path.write_bytes(data)
    pieces = [data[i : i + 64] for i in range(0, len(data), 64)]
    expected = xxhash.xxh3_128(b"".join(xxhash.xxh3_128(p).digest() for p in pieces)).hexdigest()
    assert fingerprint_file(path) == expected
    assert fingerprint_file(path, read_size=7) == expected


def test_any_split_at_piece_boundaries_gives_the_whole_file_fingerprint(tmp_path: Path, small_pieces: int) -> None:
    rng = random.Random(3)
    data = rng.randbytes(64 * 9 + 17)
    path = tmp_path / "f.ndjson"
    path.write_bytes(data)
    whole = fingerprint_file(path)
    for bounds in ([0, 64 * 3, 64 * 4, None], [0, None], [0, 64, 64 * 9, None]):
        digests: list[bytes] = []
        for start, end in itertools.pairwise(bounds):
            hasher = PieceHasher(start, end)
            # a reader feeds what it read: a line-aligned range that starts a little after the piece start
            # (the few bytes before it read separately) and runs a little past the range end
            read_start = start + 5
            hasher.feed(start, data[start:read_start])
            stop = len(data) if end is None else min(len(data), end + 11)
            for offset in range(read_start, stop, 13):
                hasher.feed(offset, data[offset : min(offset + 13, stop)])
            digests.extend(hasher.digests())
        assert combine(digests) == whole


def test_empty_file_and_changed_byte(tmp_path: Path) -> None:
    empty = tmp_path / "e.ndjson"
    empty.write_bytes(b"")
    assert fingerprint_file(empty) == xxhash.xxh3_128(b"").hexdigest()
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    a.write_bytes(b'{"resourceType":"Patient","id":"1"}\n')
    b.write_bytes(b'{"resourceType":"Patient","id":"2"}\n')
    assert fingerprint_file(a) != fingerprint_file(b)


def test_gaps_and_misaligned_starts_are_refused(small_pieces: int) -> None:
    with pytest.raises(ValueError, match="multiple"):
        PieceHasher(10)
    hasher = PieceHasher(0)
    hasher.feed(0, b"x" * 10)
    with pytest.raises(ValueError, match="gap"):
        hasher.feed(20, b"y")


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.ndjson"
    path.write_bytes(b"{}\n")
    assert fingerprint.main([str(path)]) == 0
    assert capsys.readouterr().out == f"{fingerprint_file(path)}  {path}\n"
    assert fingerprint.main([]) == 2
