"""The fetch plan: what to ask a FHIR server for, read once per run from its CapabilityStatement.

:func:`plan_fetch` turns :class:`~.discovery.ServerCapabilities` into a :class:`FetchPlan`: search or Bulk
``$export`` (and at which levels the server declares it), which contract types to ask for, whether to send
``_typeFilter``, and which contract inputs the server cannot provide. The plan is logged at ``-v``.

A server that cannot provide a contract input is not an error unless the cohort cannot exist without it
(Patient, Procedure): the run computes what the data allow, and each missing input becomes a *data gap*
(:func:`gap_problem`: a problems.csv row; the report and every MeasureReport say the results are incomplete;
the exit status is 3 unless ``--allow-partial``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from fhir_pts.problems import Problem

from .auth import NoAuth
from .discovery import ServerCapabilities
from .http import ServerError
from .search import PATIENT_TYPES

log = logging.getLogger(__name__)

#: The resource types the contract reads, in the order they are fetched.
CONTRACT_TYPES: tuple[str, ...] = ("Patient", *PATIENT_TYPES)
#: Without these there is no cohort: a server that cannot provide them is an error, not a gap.
REQUIRED_TYPES: frozenset[str] = frozenset({"Patient", "Procedure"})
#: What the contract (§1) reads from each type, i.e. what is lost when a server cannot provide it.
CONTRACT_INPUTS: dict[str, str] = {
    "Patient": "sex and age",
    "Procedure": "index stenting, technical success, stented segments, reinterventions",
    "Observation": "patency findings (primary, primary-assisted and secondary patency, imaging follow-up) and "
                   "Villalta / CIVIQ-20 totals recorded as Observations",
    "QuestionnaireResponse": "Villalta and CIVIQ-20 answered item by item (questionnaires)",
    "AdverseEvent": "serious adverse events of the index procedure (major complications not coded on the "
                    "Procedure)",
}
GAP_FIELD = "(server)"


def gap_problem(resource_type: str, why: str) -> Problem:
    """The problems.csv row of a contract input the server could not provide."""
    return Problem(resource_type, None, GAP_FIELD,
                   f"{why}: not read, so the results lack {CONTRACT_INPUTS.get(resource_type, resource_type)}")


def gap_text(resource_type: str, why: str) -> str:
    """One sentence for the report and the MeasureReports."""
    return f"{resource_type}: {why} (missing: {CONTRACT_INPUTS.get(resource_type, resource_type)})"


@dataclass
class FetchPlan:
    """What a run asks the server for, and why."""

    mode: str  # "search" | "bulk"
    level: str = "system"  # bulk: system | patient | group
    types: list[str] = field(default_factory=lambda: list(CONTRACT_TYPES))
    type_filter: bool = True
    type_filter_why: str = ""
    export_levels: frozenset[str] = frozenset()
    undeclared: list[str] = field(default_factory=list)  # contract types the CapabilityStatement does not list
    unavailable: dict[str, str] = field(default_factory=dict)  # type -> why it cannot be fetched
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """The plan as log lines."""
        lines = [f"fetch plan: {self.mode}" + (f" $export at {self.level} level" if self.mode == "bulk" else "")]
        lines.append(f"  types: {', '.join(self.types) or '(none)'}")
        if self.mode == "bulk":
            declared = ", ".join(sorted(self.export_levels)) or "none declared"
            lines.append(f"  $export levels in the CapabilityStatement: {declared}")
            lines.append(f"  _typeFilter: {'yes' if self.type_filter else 'no'} ({self.type_filter_why})")
        for rtype, why in self.unavailable.items():
            lines.append(f"  cannot fetch {rtype}: {why}")
        if self.undeclared:
            lines.append(f"  not in the CapabilityStatement (asked anyway): {', '.join(self.undeclared)}")
        lines += [f"  {note}" for note in self.notes]
        return lines

    def log(self) -> None:
        """Log the plan (``-v``)."""
        for line in self.describe():
            log.info("%s", line)


def plan_fetch(
    caps: ServerCapabilities,
    *,
    bulk: bool,
    level: str = "system",
    type_filter: bool = True,
    session: requests.Session | None = None,
) -> FetchPlan:
    """Plan the fetch from the server's capabilities (``session`` is used to read the ``$export``
    OperationDefinition when the server hosts it, to learn whether it takes ``_typeFilter``)."""
    plan = FetchPlan("bulk" if bulk else "search", level, export_levels=caps.export_levels())
    if caps.declares_resources:
        plan.undeclared = [t for t in CONTRACT_TYPES if t not in caps.interactions]
    if not bulk:
        _plan_search(caps, plan)
    else:
        _plan_bulk(caps, plan, type_filter, session)
    return plan


def _plan_search(caps: ServerCapabilities, plan: FetchPlan) -> None:
    plan.undeclared = []
    for rtype in CONTRACT_TYPES:
        if caps.offers_search(rtype) is not False:
            continue
        if rtype == "Procedure":
            hint = "use --bulk" if caps.export_levels() else "it declares no $export either"
            raise ServerError(f"this server offers no search for Procedure (CapabilityStatement); {hint}")
        if rtype == "Patient":  # included with the Procedures (_include); only the by-id fallback needs search
            plan.notes.append("Patient has no search-type interaction: patients come from _include only")
            continue
        plan.unavailable[rtype] = "the server offers no search for it (CapabilityStatement)"
    plan.types = [t for t in CONTRACT_TYPES if t not in plan.unavailable]


def _plan_bulk(caps: ServerCapabilities, plan: FetchPlan, type_filter: bool,
               session: requests.Session | None) -> None:
    levels = caps.export_levels()
    if levels and plan.level not in levels:
        plan.notes.append(f"the CapabilityStatement declares $export at {', '.join(sorted(levels))} level only; "
                          f"trying {plan.level} level anyway")
    elif not levels and caps.operations:
        plan.notes.append("the CapabilityStatement declares no $export; trying anyway")
    if not type_filter:
        plan.type_filter, plan.type_filter_why = False, "--no-type-filter"
        return
    declared = caps.search_params.get("Observation")
    if declared and "code" not in declared:
        plan.type_filter = False
        plan.type_filter_why = "the CapabilityStatement declares no Observation code search parameter"
        return
    definition = caps.operation_definitions.get((_level_type(plan.level), "export"))
    takes = _definition_takes(session, caps.base_url, definition, "_typeFilter") if definition else None
    if takes is False:
        plan.type_filter = False
        plan.type_filter_why = f"the $export OperationDefinition {definition} has no _typeFilter parameter"
    elif takes:
        plan.type_filter_why = f"declared by the $export OperationDefinition {definition}; the export is checked"
    else:
        plan.type_filter_why = "not declared either way; the export is checked and repeated without it if it " \
                               "cannot be right"


def _level_type(level: str) -> str:
    return {"system": "", "patient": "Patient", "group": "Group"}.get(level, "")


def _definition_takes(session: requests.Session | None, base_url: str, definition: str,
                      parameter: str) -> bool | None:
    """Does the OperationDefinition (read only when this server hosts it) declare ``parameter``? None when it
    cannot be read or declares no parameters at all."""
    if session is None:
        return None
    base = base_url.rstrip("/")
    url = definition if definition.startswith(("http://", "https://")) else f"{base}/{definition.lstrip('/')}"
    if urlsplit(url).netloc != urlsplit(base).netloc:
        return None  # a canonical elsewhere (e.g. hl7.org): not fetched
    try:
        response = session.get(url, auth=NoAuth(), headers={"Accept": "application/fhir+json"})
        body = response.json() if response.ok else None
    except (requests.RequestException, ValueError):
        return None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationDefinition" or not body.get("parameter"):
        return None
    return any(isinstance(p, dict) and p.get("name") == parameter for p in body["parameter"])
