"""Progress bars and logging for the command line, quiet when nobody is watching.

:func:`progress` wraps :class:`tqdm.tqdm`: the bar is shown on stderr only when stderr is a terminal (so logs,
CI output and redirected runs stay clean) and never when ``--quiet`` was given. :func:`configure_logging`
maps ``--quiet`` / ``--verbose`` to a logging level on stderr. Log messages of this package carry counts,
file names and resource types, never patient data (no names, no birth dates; ids only at DEBUG level).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

# No tqdm monitor thread: with a thread running, the reading pool cannot fork its workers and must start them
# through a fork server, ~1 s slower (fhir_pts.engines.local._context). Bars refresh on update() anyway.
tqdm.monitor_interval = 0

__all__ = ["Phase", "configure_logging", "phase", "progress", "set_quiet", "stage_bars"]

T = TypeVar("T")

_state: dict[str, bool] = {"quiet": False}
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_HANDLER_NAME = "fhir-pts-stderr"


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar whose ``enabled`` is left to the default."""
    _state["quiet"] = quiet


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | float | None = None,
    desc: str,
    unit: str = "it",
    enabled: bool | None = None,
    leave: bool = False,
    unit_scale: bool = False,
) -> tqdm[T]:
    """A tqdm progress bar on stderr: ``for x in progress(items, desc="Reading")`` or ``with progress(total=n, ...)``.

    ``enabled=None`` (default) shows the bar only when stderr is a terminal and :func:`configure_logging`
    was not called with a negative verbosity (``--quiet``); ``True``/``False`` force it. A disabled bar still
    iterates (and accepts ``update``), it just prints nothing. ``desc`` must not contain patient data.
    """
    if enabled is None:
        enabled = _stderr_is_terminal() and not _state["quiet"]
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        file=sys.stderr,
        leave=leave,
        unit_scale=unit_scale,
        dynamic_ncols=True,
        mininterval=0.2,
    )


def stage_bars(enabled: bool | None = None) -> Callable[[str, str, int, int], None]:
    """A progress callback ``(what, unit, done, total)`` for the sources (server search, Bulk download): one
    :func:`progress` bar per ``what``, opened at its first call and closed when ``done`` reaches ``total``."""
    bars: dict[str, tqdm] = {}

    def update(what: str, unit: str, done: int, total: int) -> None:
        bar = bars.get(what)
        if bar is None:
            bar = bars[what] = progress(total=total, desc=what, unit=unit, enabled=enabled)
        bar.update(done - bar.n)
        if done >= total:
            bars.pop(what).close()

    return update


def configure_logging(verbosity: int) -> logging.Logger:
    """Log the ``fhir_pts`` package to stderr at a level set by ``verbosity`` and return its logger.

    ``verbosity`` < 0 (``--quiet``): errors only, and progress bars off; 0: warnings; 1 (``--verbose``):
    info; ≥ 2 (``-vv``): debug. Calling it again replaces the handler (never duplicates lines).
    """
    level = logging.ERROR if verbosity < 0 else {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    set_quiet(verbosity < 0)
    logger = logging.getLogger("fhir_pts")
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


class Phase:
    """A running phase: counts what was done (even when no bar is shown) and drives its bar."""

    def __init__(self, bar: tqdm, total: int | float | None) -> None:
        self.bar, self.total, self.n = bar, total, 0

    def update(self, n: int = 1) -> None:
        """``n`` more done; an estimated total that turned out too small is raised (the ETA stays meaningful)."""
        self.n += n
        if self.total is not None and self.n > self.total:
            self.total = int(self.n * 1.05)
            self.bar.total = self.total
        self.bar.update(n)

    def step(self, name: str) -> None:
        """One more done, named (shown beside the bar)."""
        self.bar.set_postfix_str(name, refresh=False)
        self.update(1)


@contextmanager
def phase(
    desc: str, *, total: int | float | None = None, unit: str = "it", unit_scale: bool = False
) -> Iterator[Phase]:
    """One phase of a run (reading, analyses, figures, report): a bar while it runs, left on screen when done.

    With ``total`` the bar shows a percentage and an ETA (an estimate is fine: the total grows if passed);
    without, a count and a rate. At the end an INFO line (``-v``) says what was done and how long it took.
    """
    log = logging.getLogger("fhir_pts.progress")
    started = time.perf_counter()
    bar = progress(total=total, desc=desc, unit=unit, leave=True, unit_scale=unit_scale)
    current = Phase(bar, total)
    try:
        yield current
    finally:
        if bar.total is not None and current.n != bar.total and not bar.disable:
            bar.total = current.n  # an estimated total: end at 100 %
            bar.refresh()
        bar.close()
        log.info("%s: %s%s in %.1f s", desc, f"{current.n:,}", unit, time.perf_counter() - started)
