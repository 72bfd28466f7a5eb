"""Small pure helpers shared by the adapters: codings, dates, references, problems, the adapter output.

Nothing here touches files or the network: every function takes plain JSON values (dicts, lists, str) so the
adapters run unchanged on dicts from any engine.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_pts.adapters.facts import Fact
from fhir_pts.codes import Coding
from fhir_pts.problems import Problem, Severity
from fhir_pts.vocabulary import Vocabulary as Vocabulary  # re-exported: the adapters' vocabulary
from fhir_pts.vocabulary import codings as codings  # re-exported


def as_list(value: Any) -> list[Any]:
    """A FHIR array element as a list: a list as is, a lone object as a one-item list, anything else empty."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    return []


def as_text(value: Any) -> str | None:
    """A FHIR string / code element, or ``None`` when it is absent or not a string."""
    return value if isinstance(value, str) else None


def show(pairs: Iterable[Coding]) -> str:
    """``system|code`` of codings, for problem reasons (never a display text)."""
    listed = [f"{system}|{code}" for system, code in pairs]
    return ", ".join(listed) if listed else "text only (no coding)"


#: FHIR R4 ``dateTime`` (http://hl7.org/fhir/R4/datatypes.html#dateTime), which also covers ``date`` and
#: ``instant``: ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or ``YYYY-MM-DDThh:mm:ss(.sss)(Z|+hh:mm)`` — a time needs
#: its seconds and its zone. Exactly the spec's regex (no ISO week dates, no basic format, nothing after it).
FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
#: The same grammar for a value with a day, split for speed (the adapters' hot path): the date's shape, then the
#: time part after it. Month, day and year 0000 are checked by ``date.fromisoformat`` (which also refuses a day
#: the month has not: ``2019-02-30``).
_DAY_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_PART = re.compile(
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
#: Dates before this are reported as implausible (still used).
EARLIEST_PLAUSIBLE = dt.date(1900, 1, 1)


def parse_day(value: Any) -> dt.date | None:
    """The calendar date written at the start of a FHIR date / dateTime / instant (time and offset ignored).

    ``None`` for a missing value, a partial date (``2015``, ``2015-03``: no day) or anything that does not
    follow the FHIR ``dateTime`` grammar exactly (:data:`FHIR_DATETIME`: ``2019-W01-1``, ``20170228``,
    ``2017-02-28junk``, ``2017-02-28T10:00`` are refused) or is no calendar day (``2019-02-30``).
    """
    if not isinstance(value, str) or len(value) < 10 or _DAY_SHAPE.match(value) is None:
        return None
    if len(value) > 10 and _TIME_PART.fullmatch(value, 10) is None:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def is_partial_date(value: Any) -> bool:
    """True for a valid FHIR date without a day (``2015``, ``2015-03``)."""
    return isinstance(value, str) and len(value) < 10 and FHIR_DATETIME.fullmatch(value) is not None


def implausible(day: dt.date, today: dt.date | None = None) -> str | None:
    """Why ``day`` is implausible for clinical data (before 1900, or after today), else ``None``."""
    if day < EARLIEST_PLAUSIBLE:
        return f"{day.isoformat()} is before {EARLIEST_PLAUSIBLE.year}"
    if day > (today or dt.date.today()):
        return f"{day.isoformat()} is after the date of this run"
    return None


def day_or_problem(value: Any, field_name: str, sink: ProblemSink, expected: str) -> dt.date | None:
    """:func:`parse_day` of ``value``; reports a missing, partial or invalid date on ``field_name``, and warns
    about an implausible one (:func:`implausible`; the date is used as written)."""
    day = parse_day(value)
    if day is None:
        if value is None:
            sink.add(field_name, f"missing date: expected {expected}; resource skipped")
        elif is_partial_date(value):
            sink.add(field_name, f"partial date {value!r} gives no day: expected a full date YYYY-MM-DD; skipped")
        else:
            sink.add(
                field_name,
                f"invalid date {value!r}: expected a FHIR date YYYY-MM-DD or dateTime YYYY-MM-DDThh:mm:ss+zz:zz; "
                "resource skipped",
            )
    elif (why := implausible(day)) is not None:
        sink.add(field_name, f"implausible date: {why}; used as written", "warning")
    return day


def choice_day(resource: dict[str, Any], element: str, sink: ProblemSink, *, instant: bool = False) -> dt.date | None:
    """The day of the choice element ``<element>[x]``: ``<element>DateTime``, else ``<element>Period.start``
    (else ``<element>Instant`` when the element has that type, ``instant=True``) — as :func:`day_or_problem`;
    the problem names the form that was read, or ``<element>[x]`` when none is present."""
    value, field_name = resource.get(f"{element}DateTime"), f"{element}DateTime"
    period = resource.get(f"{element}Period")
    if value is None and isinstance(period, dict):
        value, field_name = period.get("start"), f"{element}Period.start"
    if instant and value is None and resource.get(f"{element}Instant") is not None:
        value, field_name = resource[f"{element}Instant"], f"{element}Instant"
    return day_or_problem(
        value,
        field_name if value is not None else f"{element}[x]",
        sink,
        f"{element}DateTime or {element}Period.start",
    )


def concept_fault(concept: Any) -> str | None:
    """Why a present CodeableConcept element cannot be read (a string, ``coding: null`` ...), else ``None``."""
    if concept is None or (isinstance(concept, dict) and isinstance(concept.get("coding", []), list | dict)):
        return None
    if isinstance(concept, dict):
        return f"coding is {_json_kind(concept.get('coding'))}, expected an array of Codings"
    return f"{_json_kind(concept)}, expected a CodeableConcept"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"a JSON {type(value).__name__.replace('dict', 'object').replace('list', 'array')}"


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id of a reference to a ``resource_type``, else ``None``.

    Accepts ``Type/id``, absolute ``https://…/Type/id``, versioned ``…/Type/id/_history/n`` and
    ``urn:uuid:<id>`` (transaction Bundles such as Synthea's, whose resource ids equal the uuids).
    ``reference`` is a Reference dict or its ``reference`` string.
    """
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str) or not reference:
        return None
    if reference.startswith("urn:uuid:"):
        return reference[len("urn:uuid:") :] or None
    parts = reference.split("?", 1)[0].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def accepted_patient(
    resource: dict[str, Any], sink: ProblemSink, statuses: frozenset[str], expected: str, what: str
) -> str | None:
    """The patient of a relevant resource whose ``status`` is one the contract reads, else ``None``.

    Reports (and returns ``None`` for) a status outside ``statuses`` — ``expected`` names them for the
    message, ``what`` names the resource ("procedure", "observation", ...) — or a missing / non-Patient
    subject. The sink's ``patient_id`` is set first so every problem of the resource names its patient.
    """
    sink.patient_id = reference_id(resource.get("subject"), "Patient")
    status = as_text(resource.get("status"))
    if status not in statuses:
        sink.add("status", f"status {status!r}: expected {expected}; {what} ignored")
        return None
    return subject_or_problem(resource, sink)


def subject_or_problem(resource: dict[str, Any], sink: ProblemSink, field_name: str = "subject") -> str | None:
    """The patient id of ``resource[field_name]``; reports it (and returns ``None``) when there is none."""
    reference = resource.get(field_name)
    patient_id = reference_id(reference, "Patient")
    if patient_id is None:
        written = reference.get("reference") if isinstance(reference, dict) else reference
        if written is None:
            sink.add(field_name, "missing: expected a reference Patient/<id>; resource skipped")
        else:
            # The reference itself is not echoed: a conditional reference may carry an identifier (MRN).
            if isinstance(written, str) and "?" in written:
                kind = "a conditional reference (search URL)"
            elif isinstance(written, str) and written.rstrip("/").count("/") >= 1:
                kind = f"a reference to a {written.rstrip('/').split('/')[-2]!r}"
            elif isinstance(written, str) and written.startswith("Patient/"):
                kind = "a Patient reference without an id"
            else:
                kind = "not a relative or absolute reference"
            sink.add(field_name, f"{kind}: expected Patient/<id>; resource skipped")
    sink.patient_id = patient_id
    return patient_id


class ProblemSink:
    """Collects the problems of one resource, filling in its type, id and patient."""

    __slots__ = ("patient_id", "problems", "resource_id", "resource_type")

    def __init__(self, resource_type: str, resource_id: str | None, patient_id: str | None = None) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.patient_id = patient_id
        self.problems: list[Problem] = []

    def add(self, field_name: str, reason: str, severity: Severity = "skipped") -> None:
        self.problems.append(
            Problem(self.resource_type, self.resource_id, field_name, reason, severity, patient_id=self.patient_id)
        )


@dataclass(frozen=True, slots=True)
class VersionKey:
    """What decides between two copies of one resource: ``meta.versionId`` and ``meta.lastUpdated`` as written."""

    version_id: str | None = None
    last_updated: str | None = None

    @classmethod
    def of(cls, resource: dict[str, Any]) -> VersionKey:
        meta = resource.get("meta")
        if not isinstance(meta, dict):
            return cls()
        version = meta.get("versionId")
        updated = meta.get("lastUpdated")
        return cls(
            str(version) if version is not None else None,
            updated if isinstance(updated, str) else None,
        )

    def wins_over(self, earlier: VersionKey) -> bool:
        """Whether a copy with this key, read *after* one with ``earlier``, replaces it (contract §1, Duplicates).

        The higher ``meta.versionId`` wins, compared as numbers when both are integers, else as strings;
        when they are equal or not both present, the later ``meta.lastUpdated``; else the one read last.
        """
        mine, theirs = self.version_id, earlier.version_id
        if mine is not None and theirs is not None and mine != theirs:
            if _is_integer(mine) and _is_integer(theirs):
                if int(mine) != int(theirs):
                    return int(mine) > int(theirs)
            else:
                return mine > theirs
        mine_time, their_time = _instant(self.last_updated), _instant(earlier.last_updated)
        if mine_time is not None and their_time is not None and mine_time != their_time:
            return mine_time > their_time
        return True


def _is_integer(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def _instant(value: str | None) -> dt.datetime | None:
    """A FHIR instant as an aware datetime (UTC assumed when no offset is written), or ``None``."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


@dataclass
class AdapterOutput:
    """What an adapter makes of one resource.

    ``facts`` and ``problems`` may both be empty. ``relevant`` is False for resources the analyses never use
    (a heart-rate Observation, an appendectomy): they give nothing and are not kept for duplicate resolution.
    ``key`` is ``(resourceType, id)`` (``None`` without an id) and ``version`` decides between duplicates.
    """

    facts: list[Fact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    relevant: bool = True
    key: tuple[str, str] | None = None
    version: VersionKey = field(default_factory=VersionKey)


def irrelevant() -> AdapterOutput:
    """The output for a resource the contract does not concern."""
    return AdapterOutput(relevant=False)
