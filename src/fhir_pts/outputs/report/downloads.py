"""The report's tables as files a journal takes: ``tables/<name>.csv`` and ``tables/<name>.docx``.

CSV (UTF-8, one header row, the cells as the page shows them) for re-use and checking; DOCX (python-docx:
Word and LibreOffice open it, and journals ask for editable Word tables rather than images or PDF) with the
table's caption as its title and a note naming the run. A cell with lines under its value (a CI, a number at
risk) is written ``value (line; line)``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from fhir_pts.atomic import write_all_atomically
from fhir_pts.outputs.report.values import Cell, Mono, Stack, Table


def cell_text(cell: Cell) -> str:
    """A cell as one line of text."""
    if isinstance(cell, Stack):
        return cell.main + (f" ({'; '.join(cell.subs)})" if cell.subs else "")
    if isinstance(cell, Mono):
        return cell.text
    return str(cell)


def _rows(table: Table) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells = [cell_text(c) for c in row.cells]  # type: ignore[union-attr]
        if row.kind == "indent" and cells:  # type: ignore[union-attr]
            cells[0] = "  " + cells[0]
        rows.append(cells)
    return rows


def table_csv_bytes(table: Table) -> bytes:
    """The table as CSV (header, then the rows)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(table.header))
    writer.writerows(_rows(table))
    return buffer.getvalue().encode("utf-8")


def table_docx_bytes(table: Table, note: str = "") -> bytes:
    """The table as a Word document: the caption as heading, the table (header row bold), ``note`` under it."""
    from docx import Document
    from docx.shared import Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Arial"
    style.font.size = Pt(10)
    document.add_heading(table.caption or table.name or "Table", level=2)
    rows = _rows(table)
    grid = document.add_table(rows=1 + len(rows), cols=len(table.header))
    grid.style = "Table Grid"
    grid_rows = grid.rows  # (grid.cell(i, j) rebuilds every cell of the table on each call)
    for j, cell in enumerate(grid_rows[0].cells):
        cell.paragraphs[0].add_run(str(table.header[j])).bold = True
    for i, cells in enumerate(rows, start=1):
        row_cells = grid_rows[i].cells
        for j, text in enumerate(cells[: len(table.header)]):
            run = row_cells[j].paragraphs[0].add_run(text)
            if table.rows[i - 1].kind == "group":  # type: ignore[union-attr]
                run.bold = True
    if note:
        document.add_paragraph(note).runs[0].italic = True
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def write_tables(directory: Path, tables: Iterable[Table], note: str = "") -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.docx`` of every named table into ``directory``; return the paths."""
    files: dict[Path, bytes] = {}
    for table in tables:
        if not table.name:
            continue
        files[directory / f"{table.name}.csv"] = table_csv_bytes(table)
        files[directory / f"{table.name}.docx"] = table_docx_bytes(table, note)
    write_all_atomically(files)
    return list(files)
