"""fhir-pts: outcome analyses of venous stenting for post-thrombotic syndrome, from FHIR R4.

Flow (one direction, one sub-package per layer)::

    sources  ->  adapters  ->  cohort  ->  analyses  ->  outputs
    (files,      (resource     (scores,    (pluggy      (MeasureReport,
     server)      -> facts)     patency)    plugins)     CSV, report)
"""

__version__ = "0.1.0"

from fhir_pts.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
