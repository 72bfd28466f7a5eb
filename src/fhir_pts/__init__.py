"""fhir-pts: outcome analyses of venous stenting for post-thrombotic syndrome, from FHIR R4.

Flow (one direction, one sub-package per layer)::

    sources  ->  adapters  ->  cohort  ->  analyses  ->  outputs
    (files,      (resource     (scores,    (pluggy      (MeasureReport,
     server)      -> facts)     patency)    plugins)     CSV, report)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from fhir_pts.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    """``hookimpl`` is imported on first use, so that ``fhir-pts --help`` does not load pluggy (PEP 562)."""
    if name == "hookimpl":
        from fhir_pts.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
