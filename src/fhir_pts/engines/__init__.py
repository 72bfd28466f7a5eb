"""Engines: where reading and mapping run (inputs + vocabulary → facts → cohort).

- :mod:`fhir_pts.engines.local` — the embedded engine (this process and its worker processes), the default;
- :mod:`fhir_pts.engines.spark` — the same adapters and cohort functions on Apache Spark (``--engine spark``,
  ``pip install 'fhir-pts[spark]'``); its executor steps in :mod:`fhir_pts.engines.spark_steps`;
- :mod:`fhir_pts.engines.resolve` — what every engine shares: safe adapting, Bundle expansion, the duplicate
  rule (contract §1);
- :mod:`fhir_pts.engines.base` — the :class:`~fhir_pts.engines.base.Engine` interface.

Engines sit between the layers they orchestrate (sources, adapters, cohort) and the faces (cli, host, serve),
which reach them through :mod:`fhir_pts.pipeline`.
"""

from __future__ import annotations

from typing import Any

from fhir_pts.engines.base import Engine, cohort_from_facts

#: The ``--engine`` values.
ENGINE_NAMES: tuple[str, ...] = ("local", "spark")


def make_engine(name: str = "local", *, workers: int = 1, spark_master: str | None = None, **options: Any) -> Engine:
    """The engine called ``name`` (``local`` with ``workers`` processes, or ``spark`` on ``spark_master``);
    ``options`` are passed to the engine's class (:class:`~fhir_pts.engines.local.LocalEngine`,
    :class:`~fhir_pts.engines.spark.SparkEngine`).

    :raises ValueError: an unknown engine name.
    """
    if name == "local":
        from fhir_pts.engines.local import LocalEngine

        return LocalEngine(workers=workers, **options)
    if name == "spark":
        from fhir_pts.engines.spark import SparkEngine

        return SparkEngine(master=spark_master, **options)
    raise ValueError(f"unknown engine {name!r}: expected one of {', '.join(ENGINE_NAMES)}")


__all__ = ["ENGINE_NAMES", "Engine", "cohort_from_facts", "make_engine"]
