"""Outputs of a run: FHIR MeasureReports, CSV tables, the HTML report and figures.

:func:`write_outputs` (in :mod:`fhir_pts.outputs.writer`) writes the four files of contract §4; the
submodules are imported lazily so that importing one writer does not import all of them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_outputs"]


def __getattr__(name: str) -> Any:
    if name == "write_outputs":
        from fhir_pts.outputs.writer import write_outputs

        return write_outputs
    raise AttributeError(f"module 'fhir_pts.outputs' has no attribute {name!r}")
