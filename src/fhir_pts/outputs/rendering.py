"""Figures to files: deterministic bytes (SVG, PNG at 300 dpi, PDF), written atomically, rendered in parallel.

:func:`render` turns a :class:`matplotlib.figure.Figure` into deterministic bytes: the same data give
byte-identical SVG, PNG and PDF files (fixed ``svg.hashsalt``, no creation date or software stamp in the
metadata), so a figure in a paper can be traced to the run that made it. :func:`save_figure` writes one figure's
files; :class:`FigureBatch` (and :func:`save_figures`) renders several at once, in forked worker processes where
the system allows, while the caller does other work. The figures themselves are drawn in
:mod:`fhir_pts.outputs.figures`, in :func:`figure_style`.
"""

from __future__ import annotations

import gc
import io
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
from matplotlib.backends import backend_pdf, backend_svg  # noqa: F401 - imported once here, not at the first save
from matplotlib.backends.backend_agg import FigureCanvasAgg

from fhir_pts.atomic import write_all_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Style of every figure (applied with :func:`matplotlib.rc_context`, never globally).
RC_PARAMS: dict[str, object] = {
    "svg.hashsalt": "fhir-pts",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.dpi": 300,
    "path.simplify": False,
}

#: The files every figure is written as: SVG (embedded in the page), PNG at 300 dpi and PDF (for journals).
EXPORT_FORMATS: tuple[str, ...] = ("svg", "png", "pdf")

@contextmanager
def figure_style() -> Iterator[None]:
    """Context in which figures are built and saved with the report's style (Agg backend, fixed hash salt)."""
    with matplotlib.rc_context(RC_PARAMS):
        yield


@dataclass(frozen=True)
class RenderedFigure:
    """A figure rendered to bytes (SVG, PNG at 300 dpi, PDF), and where it was saved (``None`` before
    :func:`save_figure`)."""

    name: str
    svg: bytes
    png: bytes
    pdf: bytes = b""
    svg_path: Path | None = None
    png_path: Path | None = None
    pdf_path: Path | None = None


_METADATA: dict[str, dict[str, None]] = {
    "svg": {"Date": None, "Creator": None},
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}


def render(fig: Figure, name: str, formats: Sequence[str] | None = None) -> RenderedFigure:
    """Render ``fig`` to deterministic SVG, PNG (300 dpi, journal resolution) and PDF bytes (no dates, no stamp).

    ``formats``: those of :data:`EXPORT_FORMATS` wanted besides SVG (always rendered: the page embeds it);
    default all of them.
    """
    FigureCanvasAgg(fig)  # attach an Agg canvas: no GUI backend is ever involved
    wanted = EXPORT_FORMATS if formats is None else [f for f in EXPORT_FORMATS if f in formats]
    data = {}
    with figure_style():
        for fmt in ("svg", *[f for f in wanted if f != "svg"]):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, metadata=_METADATA[fmt], bbox_inches="tight")
            data[fmt] = buffer.getvalue()
    return RenderedFigure(name=name, svg=data["svg"], png=data.get("png", b""), pdf=data.get("pdf", b""))


def _write(rendered: RenderedFigure, directory: Path) -> RenderedFigure:
    """Write a rendered figure's files ``directory/<name>.svg|png|pdf`` (all or none, atomically)."""
    name = rendered.name
    directory.mkdir(parents=True, exist_ok=True)
    paths = {ext: directory / f"{name}.{ext}" for ext in ("svg", "png", "pdf")}
    contents = {"svg": rendered.svg, "png": rendered.png, "pdf": rendered.pdf}
    write_all_atomically({paths[ext]: data for ext, data in contents.items() if data})
    return RenderedFigure(name, rendered.svg, rendered.png, rendered.pdf, paths["svg"],
                          paths["png"] if rendered.png else None, paths["pdf"] if rendered.pdf else None)  # fmt: skip


def save_figure(fig: Figure, directory: Path, name: str) -> RenderedFigure:
    """Render ``fig`` and write ``directory/<name>.svg``, ``.png`` and ``.pdf`` (:data:`EXPORT_FORMATS`; atomic)."""
    return _write(render(fig, name), directory)


#: The figures the forked workers of :func:`save_figures` render (inherited at fork, never pickled).
_PENDING: list[tuple[str, Figure]] = []


def _render_pending(index: int) -> RenderedFigure:
    name, fig = _PENDING[index]
    return render(fig, name)


def _parallel_workers(jobs: int) -> int:
    """Worker processes for ``jobs`` figures: one per core besides this process's, at most one per figure
    beyond the first; 0 (render here) when the system cannot fork or this process runs other threads (forking
    them is unsafe: the engines' rule)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if jobs < 2 or cores < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    if threading.active_count() != 1:
        return 0
    return min(cores - 1, jobs - 1)


class FigureBatch:
    """Figures rendering while the caller does other work: started on creation, written by :meth:`finish`.

    The figures (``(name, figure)`` pairs) are shared between forked worker processes, one per core besides
    this one (the figures are inherited, not pickled; the bytes come back), and this process, which renders its
    share in :meth:`finish` (after the caller's other work) — where the system forks and this process runs no
    other thread; else this process renders them all in :meth:`finish`. The bytes are the same either way. Use
    it as a context manager: leaving the block stops the workers (after an error, nothing is written).
    """

    def __init__(
        self,
        figures: Sequence[tuple[str, Figure]],
        directory: Path,
        *,
        on_saved: Callable[[RenderedFigure], None] | None = None,
    ) -> None:
        global _PENDING
        self.figures = list(figures)
        self.directory = directory
        self.on_saved = on_saved
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[RenderedFigure]] = []
        workers = _parallel_workers(len(self.figures))
        self._delegated = len(self.figures) - len(self.figures) // (workers + 1)  # the first ones go to workers
        if workers:
            _PENDING = self.figures
            # Frozen, this process's objects are left out of the workers' garbage collections: a collection
            # there would walk (and so copy, page by page) the whole inherited heap (measured: +0.3–1 CPU-s at 10k).
            gc.freeze()
            try:  # every worker is forked at the first submit, so the list is theirs from here on
                self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
                self._futures = [self._pool.submit(_render_pending, i) for i in range(self._delegated)]
            except OSError:  # the system could not fork (e.g. no memory to commit a copy of this heap): render here
                self.close()
                self._futures = []
            finally:
                gc.unfreeze()
                _PENDING = []

    def finish(self) -> list[RenderedFigure]:
        """Render this process's share, wait for the workers' (or, without workers, render them all here), write
        each as :func:`save_figure` does, in the order given, calling ``on_saved`` with each once written;
        returns them."""
        rendered: list[RenderedFigure] | None = None
        if self._pool is not None:
            try:
                own = [render(fig, name) for name, fig in self.figures[self._delegated :]]
                rendered = [future.result() for future in self._futures] + own
            except BrokenProcessPool:  # a worker died (killed, out of memory): render here instead
                rendered = None
            finally:
                self.close()
        if rendered is None:
            rendered = [render(fig, name) for name, fig in self.figures]
        saved = []
        for figure in rendered:
            saved.append(_write(figure, self.directory))
            if self.on_saved is not None:
                self.on_saved(saved[-1])
        return saved

    def close(self) -> None:
        """Stop the workers (those not started are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> FigureBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def save_figures(
    figures: Sequence[tuple[str, Figure]],
    directory: Path,
    *,
    on_saved: Callable[[str], None] | None = None,
) -> list[RenderedFigure]:
    """Render ``(name, figure)`` pairs (in parallel where the system allows, see :class:`FigureBatch`) and write
    each as :func:`save_figure` does; returns them in the order given, calling ``on_saved`` with each name."""
    def saved(figure: RenderedFigure) -> None:
        if on_saved is not None:
            on_saved(figure.name)

    with FigureBatch(figures, directory, on_saved=saved) as batch:
        return batch.finish()
