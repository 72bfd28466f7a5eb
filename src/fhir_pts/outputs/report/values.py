"""What the report's templates receive: plain values (tables, cells, figure references, cards), no markup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Stack:
    """A table cell of one main value and smaller lines under it (a CI, a number at risk)."""

    main: str
    subs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mono:
    """A table cell in a monospaced font (a digest)."""

    text: str


Cell = str | Stack | Mono


@dataclass(frozen=True)
class Row:
    """A table row; ``kind`` is ``""``, ``group`` (a heading row) or ``indent`` (a level under a group)."""

    cells: tuple[Cell, ...]
    kind: str = ""


@dataclass
class Table:
    """A table: header, rows (:class:`Row` or plain sequences of cells), caption; ``cls`` ``text`` aligns left.

    A table with a ``name`` is also written as ``tables/<name>.csv`` and ``.docx`` and linked from the page.
    """

    header: Sequence[str]
    rows: Sequence[Row | Sequence[Cell]]
    caption: str = ""
    cls: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        self.rows = [r if isinstance(r, Row) else Row(tuple(r)) for r in self.rows]


@dataclass
class FigureRef:
    """A figure as the page shows it: embedded SVG (base64), caption, alternative text, file name stem.

    ``svg_base64`` is filled in once the figures are rendered (all at once, see
    :meth:`~fhir_pts.outputs.report.context.ReportContext.save_figures`), before the page is.
    """

    name: str
    svg_base64: str
    caption: str
    alt: str


@dataclass(frozen=True)
class Unavailable:
    """An analysis whose section is empty: not run (``error`` None), or failed with ``error``."""

    measure: str
    error: str | None = None


@dataclass(frozen=True)
class Card:
    """A key-result card: what, the value, a detail line."""

    key: str
    value: str
    detail: str


@dataclass
class GenericResult:
    """One analysis as a generic statistics table (plugins, and the full statistics of the built-ins)."""

    title: str
    measure: str
    plugin: str
    description: str
    table: Table
    notes: list[str]
