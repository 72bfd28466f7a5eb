"""A run's output folder is replaced as a whole: written into a staging folder, then swapped in.

Outputs of one run never sit beside another's: :func:`staged_output` refuses an ``--out`` that is a file, or a
non-empty folder that is not a previous fhir-pts output (it holds :data:`MARKER`, or only files a run writes).
It then creates the staging folder ``.<name>.fhir-pts-staging`` beside ``--out`` (same file system), and when
the ``with`` block ends without error writes :data:`MARKER` into it and swaps it with ``--out``: atomically with
Linux ``renameat2(RENAME_EXCHANGE)``, else by two renames (the old output is moved aside first). The previous
output is then deleted. On an error nothing in ``--out`` changes and the staging folder is removed.

A run killed half-way leaves the staging folder (or, between the two renames, ``.<name>.fhir-pts-old-*``):
the next run into the same ``--out`` removes them first. One exception: ``raw/`` of a staging folder that
holds a Bulk export's resume state (``raw/.fhir-pts-bulk-state``) is kept, so an interrupted export resumes.
A lock (``flock`` on the staging folder) keeps two runs from writing into the same ``--out`` at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

#: The file that marks a folder as a fhir-pts output (JSON; no ``.json`` suffix so no reader takes it as input).
MARKER = ".fhir-pts-output"
#: What a run writes into ``--out`` (a folder holding only these, with ``measure-reports.json``, is a previous
#: output even without :data:`MARKER`, as written before the marker existed).
KNOWN_OUTPUTS: frozenset[str] = frozenset(
    {
        "measure-reports.json",
        "results.csv",
        "cohort.csv",
        "problems.csv",
        "report.html",
        "figures",
        "tables",
        "raw",
        "input",
        "abstract-comparison.csv",
        MARKER,
    }
)
#: The Bulk export's resume state (kept across an interrupted run, see :mod:`fhir_pts.sources.server.bulk`).
BULK_STATE = "raw/.fhir-pts-bulk-state"


class OutputFolderError(Exception):
    """``--out`` cannot be used (a file, a foreign non-empty folder, not writable, in use): a user error."""


def staging_path(out: Path) -> Path:
    """The staging folder of ``out``: ``.<name>.fhir-pts-staging`` beside it."""
    return out.parent / f".{out.name}.fhir-pts-staging"


def is_previous_output(folder: Path) -> bool:
    """Whether ``folder`` holds a fhir-pts output (its marker, or only what a run writes) or nothing at all."""
    entries = [p.name for p in folder.iterdir()]
    if not entries or MARKER in entries:
        return True
    leftovers = {e for e in entries if e.startswith(".") and e.endswith(".tmp")}
    rest = set(entries) - leftovers
    return "measure-reports.json" in rest and rest <= KNOWN_OUTPUTS


def check_output_folder(out: Path) -> None:
    """Raise :class:`OutputFolderError` unless ``out`` is missing, empty, or a previous fhir-pts output."""
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {out} is a file, not a folder; give a folder (new, empty or a previous output)")
    if out.is_dir():
        try:
            ours = is_previous_output(out)
        except PermissionError as e:
            raise OutputFolderError(f"--out {out} cannot be read: {e.strerror}") from None
        if not ours:
            raise OutputFolderError(
                f"--out {out} is a non-empty folder that is not a fhir-pts output; give a new or empty folder "
                "(a previous fhir-pts output is replaced as a whole)"
            )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _clean_staging(staging: Path) -> None:
    """Empty a leftover staging folder, keeping ``raw/`` when it holds a Bulk export's resume state."""
    keep_raw = (staging / BULK_STATE).exists()
    for child in staging.iterdir():
        if keep_raw and child.name == "raw":
            continue
        _remove(child)


def _clean_leftovers(out: Path) -> None:
    """Remove ``.<name>.fhir-pts-old-*`` folders a killed swap left beside ``out``."""
    for old in out.parent.glob(f".{out.name}.fhir-pts-old-*"):
        _remove(old)


def swap_in(staging: Path, out: Path) -> None:
    """Make ``staging`` the new ``out`` (the previous ``out``, if any, is deleted)."""
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):
        _remove(staging)  # now the previous output
        return
    aside = out.parent / f".{out.name}.fhir-pts-old-{os.getpid()}"
    os.rename(out, aside)
    os.rename(staging, out)
    _remove(aside)


@contextlib.contextmanager
def staged_output(out: Path, *, command: str = "run") -> Iterator[Path]:
    """Check ``out``, yield a staging folder to write the run into, and swap it in when the block succeeds.

    Raises :class:`OutputFolderError` (before anything is read or written) when ``out`` is unusable. On an
    exception inside the block the staging folder is removed (except a Bulk export's resume state) and
    ``out`` is left as it was.
    """
    out = Path(os.path.abspath(out))
    check_output_folder(out)
    staging = staging_path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir(exist_ok=True)
        fd = os.open(staging, os.O_RDONLY)
    except OSError as e:
        raise OutputFolderError(f"--out {out}: cannot create a folder there ({e.strerror}: {e.filename})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputFolderError(f"--out {out}: another fhir-pts run is writing there") from None
        _clean_staging(staging)
        _clean_leftovers(out)
        probe = staging / ".fhir-pts-probe"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise OutputFolderError(f"--out {out}: cannot write into {staging.parent}: {e.strerror}") from None
        try:
            yield staging
        except BaseException:
            _clean_staging(staging)
            if not any(staging.iterdir()):
                _remove(staging)
            raise
        marker = {"fhir-pts": _version(), "command": command, "finished": dt.datetime.now(dt.UTC).isoformat()}
        (staging / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        check_output_folder(out)  # a file or a foreign folder may have appeared there while we ran
        swap_in(staging, out)
    finally:
        os.close(fd)


def _version() -> str:
    from fhir_pts import __version__

    return __version__
