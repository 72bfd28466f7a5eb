"""fhir_pts.atomic: every file appears complete or not at all, with an ordinary file's mode (or a private one)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fhir_pts import atomic


def test_atomic_write_leaves_no_partial_file_when_the_writer_raises(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as handle:
        handle.write("half a file")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["results.csv"]


def test_write_all_atomically_is_all_or_nothing(tmp_path: Path) -> None:
    first = tmp_path / "one.csv"
    first.write_text("old one\n")

    def failing() -> bytes:
        raise ValueError("rendering failed")

    with pytest.raises(ValueError):
        atomic.write_all_atomically({first: b"new one\n", tmp_path / "two.csv": failing})
    assert first.read_text() == "old one\n"
    assert os.listdir(tmp_path) == ["one.csv"]


def test_atomic_write_bytes_creates_folder(tmp_path: Path) -> None:
    path = atomic.atomic_write_text(tmp_path / "new" / "f.txt", "x\n")
    assert path.read_text() == "x\n"


def test_failed_move_leaves_the_target_and_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.svg"
    target.write_bytes(b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError("no space")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="no space"):
        atomic.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg"]


def test_file_mode_follows_the_umask_or_is_private(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        plain = atomic.atomic_write_bytes(tmp_path / "plain.csv", b"x")
        private = atomic.atomic_write_bytes(tmp_path / "raw.ndjson", b"{}\n", private=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o640
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_atomic_open_binary_replaces_only_at_the_end(tmp_path: Path) -> None:
    target = tmp_path / "Patient.ndjson"
    target.write_bytes(b"old\n")
    with atomic.atomic_open(target, "wb") as handle:
        handle.write(b"new\n")
        assert target.read_bytes() == b"old\n"  # not yet
        [temp] = [p for p in tmp_path.iterdir() if p.name.endswith(atomic.TEMP_SUFFIX)]
        assert temp.name.startswith(".Patient.ndjson.")
    assert target.read_bytes() == b"new\n"
    assert os.listdir(tmp_path) == ["Patient.ndjson"]


def test_commit_all_moves_every_file_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [atomic.AtomicFile(tmp_path / f"{t}.ndjson", private=True) for t in ("Patient", "Procedure")]
    for f in files:
        f.handle.write(b"{}\n")
    assert not (tmp_path / "Patient.ndjson").exists()
    assert atomic.commit_all(files) == [tmp_path / "Patient.ndjson", tmp_path / "Procedure.ndjson"]
    assert sorted(os.listdir(tmp_path)) == ["Patient.ndjson", "Procedure.ndjson"]

    broken = [atomic.AtomicFile(tmp_path / f"{t}.ndjson") for t in ("Patient", "Procedure")]
    for f in broken:
        f.handle.write(b"new\n")
    calls = []

    def fsync(fd: int) -> None:  # the second file's data cannot be made durable (a full disk)
        calls.append(fd)
        if len(calls) == 2:
            raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="no space"):
        atomic.commit_all(broken)
    assert sorted(os.listdir(tmp_path)) == ["Patient.ndjson", "Procedure.ndjson"]  # no temporary file left
    assert (tmp_path / "Patient.ndjson").read_bytes() == b"{}\n"  # neither was replaced


def test_atomic_open_refuses_other_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic.atomic_open(tmp_path / "x", "a"):
        pass
