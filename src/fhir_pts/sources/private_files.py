"""Files that hold secrets or patient data: warn when others can read them (as ``ssh`` does for a private key),
and create folders and files that only their owner can read.

Used for the private key and token files of the server source, the access-token file of ``fhir-pts serve``,
and the raw FHIR copy a server run writes (``OUT/raw/``).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["exposed_mode", "make_private_dir", "protect_tree", "warn_if_exposed"]

log = logging.getLogger("fhir_pts.security")


def exposed_mode(path: str | Path) -> int | None:
    """The permission bits of ``path`` when its group or others may read or write it, else ``None``
    (also ``None`` on a file system without POSIX modes, or when it cannot be inspected)."""
    if os.name != "posix":
        return None
    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def warn_if_exposed(path: str | Path, what: str) -> bool:
    """Log a warning when ``path`` (``what``: "private key file", "token file" ...) is accessible to other
    users; return whether it was. The file is still used (ssh refuses; a warning is enough here)."""
    mode = exposed_mode(path)
    if mode is None:
        return False
    log.warning(
        "WARNING: %s %s is accessible by others (mode %04o): anyone on this machine can read the secret; "
        "run: chmod 600 %s",
        what, path, mode, path,
    )  # fmt: skip
    return True


def make_private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) and make it ``0700``: only its owner may list or open what it holds."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        folder.chmod(0o700)
    return folder


def protect_tree(path: str | Path) -> None:
    """Make every folder under ``path`` ``0700`` and every file ``0600``."""
    if os.name != "posix" or not Path(path).exists():
        return
    for root, dirs, files in os.walk(path):
        Path(root).chmod(0o700)
        for name in dirs:
            (Path(root) / name).chmod(0o700)
        for name in files:
            (Path(root) / name).chmod(0o600)
