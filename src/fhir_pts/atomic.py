"""Atomic file writing: every file the project writes appears complete or not at all (the one implementation).

A file is written to a temporary file ``.<name>.<random>.tmp`` in the same folder (same file system), flushed
and fsynced, then moved over the target with :func:`os.replace` (atomic on POSIX and Windows). If anything fails
before the move, the temporary file is removed and the target is untouched.

- :func:`atomic_write_bytes`, :func:`atomic_write_text` — one file from its finished content;
- :func:`atomic_open` — a text or binary handle whose content replaces the target when the ``with`` block ends;
- :class:`AtomicFile` — the same handle kept open across calls (streaming writers), moved by :meth:`~AtomicFile.commit`;
- :func:`commit_all` — several :class:`AtomicFile` moved into place only when every one was written;
- :func:`write_all_atomically` — several files from their bytes, all replaced or none.

``private=True`` creates the file readable by its owner only (0600: raw patient data); otherwise it gets the mode
an ordinary ``open(path, "w")`` would give (0666 less the umask). Shared by every layer
(sources, outputs, synth): it knows nothing of them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

#: Temporary files end with this (a previous output's leftovers are recognised by it).
TEMP_SUFFIX = ".tmp"


def _create_temp(path: Path, private: bool) -> tuple[int, Path]:
    """A new file ``.<name>.<random>.tmp`` beside ``path`` (``O_EXCL``; the kernel applies the umask, so no
    process-wide umask juggling that would race with other threads)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            return os.open(temp, flags, 0o600 if private else 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


class AtomicFile:
    """A file written under a temporary name beside ``path``; :meth:`commit` moves it over ``path``.

    ``handle`` is the open file (binary unless ``encoding`` is given; then text with ``newline``). Use it as a
    context manager (commit on success, discard on error) or call :meth:`commit` / :meth:`discard` yourself.
    """

    def __init__(
        self,
        path: Path,
        *,
        private: bool = False,
        encoding: str | None = None,
        newline: str | None = "",
        buffering: int = -1,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.temp = _create_temp(self.path, private)
        try:
            if encoding is None:
                self.handle: IO[Any] = os.fdopen(fd, "wb", buffering=buffering)
            else:
                self.handle = os.fdopen(fd, "w", buffering=buffering, encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)
            self.temp.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Flush, fsync and close the temporary file (idempotent); the target is not touched yet."""
        if not self.handle.closed:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()

    def move(self) -> Path:
        """Move the (closed) temporary file over the target; returns the target."""
        os.replace(self.temp, self.path)
        return self.path

    def commit(self) -> Path:
        """Close the file and move it over the target; on an error the temporary file is removed."""
        try:
            self.close()
            return self.move()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and remove the temporary file; the target is untouched."""
        with suppress(OSError):
            self.handle.close()
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def commit_all(files: Iterable[AtomicFile]) -> list[Path]:
    """Close every file, then move each over its target; if closing any fails, every one is discarded and no
    target is touched. Returns the targets, in the order given."""
    files = list(files)
    try:
        for f in files:
            f.close()
    except BaseException:
        for f in files:
            f.discard()
        raise
    moved = []
    try:
        for f in files:
            moved.append(f.move())
    finally:
        for f in files[len(moved):]:
            f.discard()
    return moved


def atomic_write_bytes(path: Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (creating the folder); returns ``path``."""
    with AtomicFile(path, private=private) as f:
        f.handle.write(data)
    return Path(path)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8, newlines as given); returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


@contextmanager
def atomic_open(
    path: Path, mode: str = "w", *, newline: str | None = "", encoding: str = "utf-8", private: bool = False
) -> Iterator[IO[Any]]:
    """A file handle (``mode`` ``"w"`` text, ``"wb"`` binary) whose content replaces ``path`` only when the
    ``with`` block ends without error.

    >>> with atomic_open(Path("out/results.csv")) as handle:   # doctest: +SKIP
    ...     handle.write("measure,statistic\\n")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    with AtomicFile(path, private=private, encoding=None if mode == "wb" else encoding, newline=newline) as f:
        yield f.handle


def write_all_atomically(files: Mapping[Path, bytes | Callable[[], bytes]]) -> dict[Path, Path]:
    """Write several files so that either all of them are replaced or none is.

    Parameters
    ----------
    files: target path -> its bytes, or a function producing them (called before anything is moved).

    Returns
    -------
    target path -> target path, for the files written.

    Every temporary file is written first; only when all are written are they moved into place. If
    rendering or writing any of them fails, every temporary file is removed and no target is touched.
    """
    opened: list[AtomicFile] = []
    try:
        for path, content in files.items():
            data = content() if callable(content) else content
            f = AtomicFile(Path(path))
            opened.append(f)
            f.handle.write(data)
    except BaseException:
        for f in opened:
            f.discard()
        raise
    commit_all(opened)
    return {Path(p): Path(p) for p in files}
