"""Engines: where reading and mapping run (inputs + vocabulary → facts → cohort).

- :mod:`fhir_pts.engines.local` — the embedded engine (this process and its worker processes), the default;
- :mod:`fhir_pts.engines.resolve` — what every engine shares: safe adapting, Bundle expansion, the duplicate
  rule (contract §1);
- :mod:`fhir_pts.engines.base` — the :class:`~fhir_pts.engines.base.Engine` interface.

Engines sit between the layers they orchestrate (sources, adapters, cohort) and the faces (cli, host, serve),
which reach them through :mod:`fhir_pts.pipeline`.
"""

from __future__ import annotations

from fhir_pts.engines.base import Engine, cohort_from_facts

__all__ = ["Engine", "cohort_from_facts"]
