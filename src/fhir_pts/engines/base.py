"""The engine interface: inputs + vocabulary → facts → cohort.

An engine orchestrates reading and mapping: it reads the INPUTs, runs the pure adapters
(:func:`fhir_pts.adapters.adapt_resource`) on every resource, resolves duplicates with the shared rule
(:mod:`fhir_pts.engines.resolve`) and builds the cohort with :func:`fhir_pts.cohort.build.build_cohort`. Engines
differ only in where that work runs: this process and its worker processes (:mod:`fhir_pts.engines.local`) or a
Spark cluster (:mod:`fhir_pts.engines.spark`). Every engine gives the same cohort for the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from fhir_pts.adapters.facts import FactSet
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Instrument
from fhir_pts.vocabulary import ConceptMapTranslator, Vocabulary


class Engine(Protocol):
    """Reads INPUTs and builds the cohort (see :mod:`fhir_pts.engines.base`)."""

    #: ``local`` or ``spark`` (the ``--engine`` value).
    name: str

    def load_cohort(
        self,
        inputs: Sequence[Path | str],
        concepts: Vocabulary | ConceptMapTranslator | None = None,
        windows: TimePointWindows | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Cohort:
        """The cohort of ``inputs`` (files / folders the engine can read), site codes mapped by ``concepts``
        (the run's :class:`~fhir_pts.vocabulary.Vocabulary`, shared with the other doors).

        :param progress: called with the number of resources read since its previous call (when the engine
            can tell).
        :raises InputError: an INPUT is missing or unusable.
        """
        ...


def cohort_from_facts(
    facts: FactSet, windows: TimePointWindows | None = None, instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS
) -> Cohort:
    """Build the cohort; its ``problems`` are the reading/adapter problems followed by the cohort's own.

    ``instruments``: those scored — the run's vocabulary's (:attr:`Vocabulary.instruments`), so that every
    instrument the adapters read is scored."""
    from fhir_pts.cohort.build import build_cohort  # pandas: imported while the workers read, not before

    cohort = build_cohort(facts, windows or TimePointWindows(), instruments)
    origins = facts.origins
    own = [
        p.located(*origins[(p.resource_type, p.resource_id)])
        if p.file is None and p.resource_id is not None and (p.resource_type, p.resource_id) in origins
        else p
        for p in cohort.problems
    ]
    cohort.problems = [*facts.problems, *own]
    cohort.flow.setdefault("resources_read", facts.resources_read)
    cohort.input_fingerprints = dict(facts.input_fingerprints)
    return cohort
