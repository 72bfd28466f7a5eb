"""What every engine shares: adapting one record safely, expanding Bundles, and the duplicate rule (contract §1).

Duplicates: resources with the same ``resourceType`` and ``id`` count once — the higher ``meta.versionId`` (as
numbers when both are integers, else as strings), else the later ``meta.lastUpdated``, else the copy read last
(:meth:`~fhir_pts.adapters.common.VersionKey.wins_over`). Only the winner's facts *and* problems are kept;
problems met while reading (malformed lines, resources without id) are always kept. Copies that disagree (their
facts or problems differ: what the analyses would read changed) are reported as a warning on the winner, one
per losing copy, naming the versions and what differs; a copy about another patient is reported as a subject
change (and logged), because the fact then moves from one patient to another.

:class:`Merger` applies the rule to records fed in reading order and builds the :class:`FactSet`. The local
engine feeds it every record of a run; the Spark engine feeds it the copies of one resource key on an executor,
then the winners of one patient — the same code either way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from fhir_pts.adapters import adapt_resource
from fhir_pts.adapters.common import AdapterOutput
from fhir_pts.adapters.facts import (
    AdverseEventFact,
    Fact,
    FactSet,
    PatencyFindingFact,
    PatientFact,
    ProcedureFact,
    ScoreAssessmentFact,
)
from fhir_pts.problems import Problem
from fhir_pts.sources.prefilter import CandidateFilter
from fhir_pts.vocabulary import Vocabulary

log = logging.getLogger(__name__)

#: Where a record was read: (file index, line, sequence number); records are ordered by it.
Order = tuple[Any, ...]


def candidate_filter(vocabulary: Vocabulary) -> CandidateFilter:
    """The NDJSON byte pre-filter for a run's vocabulary: the contract's codes, the ConceptMaps' local codes
    and the installed instruments' hosts (a line that could carry any of them is parsed)."""
    hosts = vocabulary.instrument_index.hosts()
    return CandidateFilter.for_contract(vocabulary.source_codes, instrument_hosts=hosts)


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
    #: Warnings about the copies that lost to this one (or to the winners it replaced) and disagreed with it.
    conflicts: list[Problem] = field(default_factory=list)


def _patient(output: AdapterOutput) -> str | None:
    for fact in output.facts:
        patient = getattr(fact, "patient_id", None)
        if patient is not None:
            return str(patient)
    return next((p.patient_id for p in output.problems if p.patient_id is not None), None)


def _version(output: AdapterOutput) -> str:
    key = output.version
    if key.version_id is not None:
        return f"versionId {key.version_id}"
    if key.last_updated is not None:
        return f"lastUpdated {key.last_updated}"
    return "no version"


def _differences(kept: AdapterOutput, lost: AdapterOutput) -> list[str]:
    """The fact fields (or 'facts' / 'problems') in which two copies of one resource disagree."""
    if len(kept.facts) == len(lost.facts) == 1 and type(kept.facts[0]) is type(lost.facts[0]):
        a, b = kept.facts[0], lost.facts[0]
        assert is_dataclass(a) and is_dataclass(b)
        names = [f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)]
    else:
        names = ["facts"] if kept.facts != lost.facts else []
    if [(p.field, p.reason) for p in kept.problems] != [(p.field, p.reason) for p in lost.problems]:
        names.append("problems")
    return names


def conflict(kept: AdapterOutput, lost: AdapterOutput, lost_file: str | None, lost_line: int | None) -> Problem | None:
    """The warning about two disagreeing copies of one resource (``None`` when they agree)."""
    differs = _differences(kept, lost)
    if not differs or kept.key is None:
        return None
    resource_type, resource_id = kept.key
    kept_patient, lost_patient = _patient(kept), _patient(lost)
    where = f" ({lost_file}:{lost_line})" if lost_file is not None and lost_line is not None else ""
    if kept_patient != lost_patient:
        log.warning("%s/%s: duplicate copies name different patients; the newer copy is used", resource_type,
                    resource_id)  # fmt: skip
        reason = (
            f"SUBJECT CHANGED: duplicate copies of {resource_type}/{resource_id} are about different patients; "
            f"the copy with {_version(kept)} is used, the one with {_version(lost)}{where} (another patient) is not"
        )
    else:
        reason = (
            f"conflicting duplicate: copies of {resource_type}/{resource_id} differ in {', '.join(differs)}; "
            f"the copy with {_version(kept)} is used, the one with {_version(lost)}{where} is not"
        )
    return Problem(resource_type, resource_id, "id", reason, "warning", patient_id=kept_patient)


@dataclass
class Merger:
    """Resolves duplicates over records fed in reading order, then builds the :class:`FactSet`."""

    winners: dict[tuple[str, str], Winner] = field(default_factory=dict)
    loose: list[tuple[Order, Problem]] = field(default_factory=list)
    resources_read: int = 0
    _seq: int = 0

    def add(
        self,
        output: AdapterOutput,
        file: str | None,
        line: int | None,
        file_index: int = 0,
        by_line: bool = False,
        order: Order | None = None,
    ) -> None:
        """Feed one adapted resource, in reading order.

        Output order is feeding order; with ``by_line`` it is (file index, line), which is the same for
        files read whole and lets the parts of a split file be fed in any order of completion. An engine
        that knows each record's place in the input gives it as ``order`` (any tuple ordering the records).
        """
        self._seq += 1
        if order is None:
            order = (file_index, (line or 0) if by_line else 0, self._seq)
        if output.key is None:
            for problem in output.problems:
                self.loose.append((order, problem.located(file, line)))
            return
        current = self.winners.get(output.key)
        if current is None:
            self.winners[output.key] = Winner(order, output, file, line)
        elif output.version.wins_over(current.output.version):
            winner = Winner(order, output, file, line, current.conflicts)
            if (problem := conflict(output, current.output, current.file, current.line)) is not None:
                winner.conflicts.append(problem)
            self.winners[output.key] = winner
        elif (problem := conflict(current.output, output, file, line)) is not None:
            current.conflicts.append(problem)

    def add_read_problem(self, problem: Problem, file_index: int = 0) -> None:
        self._seq += 1
        self.loose.append(((file_index, problem.line or 0, self._seq), problem))

    def fact_set(self) -> FactSet:
        """The winners' facts, problems and conflicts, and the loose problems, in reading order."""
        facts = empty_fact_set(self.resources_read)
        entries: list[tuple[Order, Any]] = [(w.order, w) for w in self.winners.values()]
        entries.extend(self.loose)
        entries.sort(key=lambda entry: entry[0])
        for _, entry in entries:
            if isinstance(entry, Problem):
                facts.problems.append(entry)
                continue
            facts.problems.extend(problem.located(entry.file, entry.line) for problem in entry.output.problems)
            facts.problems.extend(problem.located(entry.file, entry.line) for problem in entry.conflicts)
            if entry.output.facts and entry.file is not None and entry.output.key is not None:
                facts.origins[entry.output.key] = (entry.file, entry.line)
            add_facts(facts, entry.output.facts)
        return facts


def empty_fact_set(resources_read: int = 0) -> FactSet:
    """A :class:`FactSet` with nothing in it yet."""
    return FactSet(
        patients={}, procedures=[], findings=[], assessments=[], adverse_events=[], problems=[],
        resources_read=resources_read,
    )  # fmt: skip


def add_facts(facts: FactSet, new: Iterable[Fact]) -> None:
    """Append facts (in reading order) to the lists of ``facts`` their kinds belong to."""
    for fact in new:
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
