"""Atomic file writing: every output file is written complete or not at all.

A file is written to a temporary file in the same folder (same file system), flushed and fsynced, then moved
over the target with :func:`os.replace` (atomic on POSIX and Windows). If anything fails before the move,
the temporary file is removed and the target is untouched. :func:`write_all_atomically` renders nothing
itself: it receives the finished bytes of several files, writes every temporary file first and only then
moves them into place, so a failure while writing leaves none of the new files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO


def _default_mode() -> int:
    """The mode an ordinary ``open(path, "w")`` would give (0666 less the umask), not mkstemp's 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_path(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, _default_mode())
    return fd, tmp


def _write_temp(path: Path, data: bytes) -> str:
    fd, tmp = _temp_path(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating the folder); returns ``path``."""
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8, newlines as given); returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


@contextmanager
def atomic_open(path: Path, *, newline: str | None = "", encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file handle whose content replaces ``path`` only when the ``with`` block ends without error.

    >>> with atomic_open(Path("out/results.csv")) as handle:   # doctest: +SKIP
    ...     handle.write("measure,statistic\\n")
    """
    path = Path(path)
    fd, tmp = _temp_path(path)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
    temps: dict[Path, str] = {}
    try:
        for path, content in files.items():
            data = content() if callable(content) else content
            temps[Path(path)] = _write_temp(Path(path), data)
        for path, tmp in list(temps.items()):
            os.replace(tmp, path)
            del temps[path]
    finally:
        for tmp in temps.values():
            with suppress(FileNotFoundError):
                os.unlink(tmp)
    return {Path(p): Path(p) for p in files}
