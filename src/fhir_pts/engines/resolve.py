"""What every engine shares: adapting one record safely, expanding Bundles, and the duplicate rule (contract §1).

Duplicates: resources with the same ``resourceType`` and ``id`` count once — the higher ``meta.versionId`` (as
numbers when both are integers, else as strings), else the later ``meta.lastUpdated``, else the copy read last
(:meth:`~fhir_pts.adapters.common.VersionKey.wins_over`). Only the winner's facts *and* problems are kept;
problems met while reading (malformed lines, resources without id) are always kept.

:class:`Merger` applies the rule to records fed in reading order and builds the :class:`FactSet`. The local
engine feeds it every record of a run; the Spark engine feeds it the copies of one resource key on an executor,
then the winners of one patient — the same code either way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.common import AdapterOutput
from fhir_pts.adapters.facts import (
    AdverseEventFact,
    FactSet,
    PatencyFindingFact,
    PatientFact,
    ProcedureFact,
    ScoreAssessmentFact,
)
from fhir_pts.problems import Problem
from fhir_pts.vocabulary import Vocabulary

log = logging.getLogger(__name__)

#: Where a record was read: (file index, line, sequence number); records are ordered by it.
Order = tuple[int, int, int]


def adapt_safely(resource: dict[str, Any], vocabulary: Vocabulary) -> AdapterOutput:
    """:func:`adapt_resource`, with an unexpected failure on one record turned into a problem for that record.

    A record without a ``resourceType`` (e.g. a Bundle entry's resource) cannot be read: it is skipped and
    reported, never dropped silently.
    """
    if not isinstance(resource.get("resourceType"), str):
        resource_id = resource.get("id")
        return AdapterOutput(problems=[Problem(
            "?", resource_id if isinstance(resource_id, str) else None, "resourceType",
            "missing: expected a FHIR resource with a resourceType (e.g. Patient, Procedure); record skipped",
        )])  # fmt: skip
    try:
        return adapt_resource(resource, vocabulary)
    except Exception as error:  # a bug must not cost the whole run; the record is reported instead
        log.exception("adapter failed on one %s resource", resource.get("resourceType"))
        resource_type = resource.get("resourceType")
        resource_id = resource.get("id")
        return AdapterOutput(
            problems=[
                Problem(
                    resource_type if isinstance(resource_type, str) else "?",
                    resource_id if isinstance(resource_id, str) else None,
                    "resource",
                    f"could not be read ({type(error).__name__}); skipped — please report this as a bug",
                )
            ]
        )


def expand_bundle(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The resource itself, or, for a Bundle, the resources of its entries (nested Bundles expanded too).

    An entry without a resource object (other than a ``DELETE`` request) gives an empty dict, which
    :func:`adapt_safely` reports as a record without ``resourceType``: nothing is skipped silently.
    """
    if resource.get("resourceType") != "Bundle":
        yield resource
        return
    for entry in resource.get("entry") or ():
        inner = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(inner, dict):
            yield from expand_bundle(inner)
        elif not (isinstance(entry, dict) and isinstance(entry.get("request"), dict)
                  and entry["request"].get("method") == "DELETE"):  # fmt: skip
            yield {}


@dataclass
class Winner:
    """The copy of a resource that wins so far, with its place in the input."""

    order: Order
    output: AdapterOutput
    file: str | None
    line: int | None


@dataclass
class Merger:
    """Resolves duplicates over records fed in reading order, then builds the :class:`FactSet`."""

    winners: dict[tuple[str, str], Winner] = field(default_factory=dict)
    loose: list[tuple[Order, Problem]] = field(default_factory=list)
    resources_read: int = 0
    _seq: int = 0

    def add(
        self, output: AdapterOutput, file: str | None, line: int | None, file_index: int = 0, by_line: bool = False
    ) -> None:
        """Feed one adapted resource, in reading order.

        Output order is feeding order; with ``by_line`` it is (file index, line), which is the same for
        files read whole and lets the parts of a split file be fed in any order of completion.
        """
        self._seq += 1
        order = (file_index, (line or 0) if by_line else 0, self._seq)
        if output.key is None:
            for problem in output.problems:
                self.loose.append((order, problem.located(file, line)))
            return
        current = self.winners.get(output.key)
        if current is None or output.version.wins_over(current.output.version):
            self.winners[output.key] = Winner(order, output, file, line)

    def add_read_problem(self, problem: Problem, file_index: int = 0) -> None:
        self._seq += 1
        self.loose.append(((file_index, problem.line or 0, self._seq), problem))

    def fact_set(self) -> FactSet:
        facts = FactSet(
            patients={}, procedures=[], findings=[], assessments=[], adverse_events=[], problems=[],
            resources_read=self.resources_read,
        )  # fmt: skip
        entries: list[tuple[Order, Any]] = [(w.order, w) for w in self.winners.values()]
        entries.extend(self.loose)
        entries.sort(key=lambda entry: entry[0])
        for _, entry in entries:
            if isinstance(entry, Problem):
                facts.problems.append(entry)
                continue
            facts.problems.extend(problem.located(entry.file, entry.line) for problem in entry.output.problems)
            for fact in entry.output.facts:
                if isinstance(fact, PatientFact):
                    facts.patients[fact.resource_id] = fact
                elif isinstance(fact, ProcedureFact):
                    facts.procedures.append(fact)
                elif isinstance(fact, PatencyFindingFact):
                    facts.findings.append(fact)
                elif isinstance(fact, ScoreAssessmentFact):
                    facts.assessments.append(fact)
                elif isinstance(fact, AdverseEventFact):
                    facts.adverse_events.append(fact)
        return facts
