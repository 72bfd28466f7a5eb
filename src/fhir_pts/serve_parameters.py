"""The parameters of ``$evaluate-measure`` (R4 semantics), checked: :func:`parse_evaluate_parameters` turns the
query and a ``Parameters`` body into an :class:`EvaluateRequest`, or raises :class:`Problem` (an HTTP status and
an OperationOutcome issue) naming what is wrong. Used by :mod:`fhir_pts.serve`."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fhir_pts.pipeline import FHIR_DATETIME

__all__ = ["EvaluateRequest", "Problem", "operation_outcome", "parameters_resource", "parse_evaluate_parameters"]

_EVALUATE_PARAMETERS = frozenset({"periodStart", "periodEnd", "reportType", "subject", "measure"})
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class Problem(Exception):
    """An error answered as an OperationOutcome with an HTTP status."""

    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def operation_outcome(code: str, message: str, severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue (``code`` from the FHIR issue-type value set)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


def _parse_date(value: str, name: str, end: bool) -> dt.date:
    """A FHIR ``date`` (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``; a dateTime's date part): the first day of a partial
    date for a start, the last day for an end. The value must follow FHIR's dateTime grammar exactly
    (:data:`fhir_pts.adapters.common.FHIR_DATETIME`: no ``2019-01-01Tjunk``, no ISO week dates)."""
    text = value.strip()
    if FHIR_DATETIME.fullmatch(text) is None:
        raise Problem(HTTPStatus.BAD_REQUEST, "invalid", f"{name} {value!r} is not a FHIR date (YYYY-MM-DD)")
    match = _PARTIAL_DATE.match(text[:10])
    if not match:
        raise Problem(HTTPStatus.BAD_REQUEST, "invalid", f"{name} {value!r} is not a FHIR date (YYYY-MM-DD)")
    year, month, day = match.groups()
    try:
        if day is not None:
            return dt.date(int(year), int(month), int(day))
        if month is not None:
            m = int(month)
            last = calendar.monthrange(int(year), m)[1] if 1 <= m <= 12 else 0
            return dt.date(int(year), m, last if end else 1)
        return dt.date(int(year), 12, 31) if end else dt.date(int(year), 1, 1)
    except ValueError as exc:
        raise Problem(HTTPStatus.BAD_REQUEST, "invalid", f"{name} {value!r} is not a valid date ({exc})") from exc


def parameters_resource(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (name, value) pairs of a Parameters resource (primitive values and references only)."""
    if body.get("resourceType") != "Parameters":
        raise Problem(HTTPStatus.BAD_REQUEST, "invalid", "the body must be a FHIR Parameters resource")
    pairs: list[tuple[str, str]] = []
    for parameter in body.get("parameter", []) or []:
        if not isinstance(parameter, Mapping) or not isinstance(parameter.get("name"), str):
            raise Problem(HTTPStatus.BAD_REQUEST, "invalid", "every Parameters.parameter needs a name")
        values = [(k, v) for k, v in parameter.items() if k.startswith("value")]
        if len(values) != 1:
            raise Problem(HTTPStatus.BAD_REQUEST, "invalid", f"parameter {parameter['name']!r} needs one value[x]")
        key, value = values[0]
        if key == "valueReference" and isinstance(value, Mapping):
            value = value.get("reference", "")
        if not isinstance(value, str):
            raise Problem(HTTPStatus.BAD_REQUEST, "invalid", f"parameter {parameter['name']!r}: unsupported {key}")
        pairs.append((parameter["name"], value))
    return pairs


@dataclass(frozen=True)
class EvaluateRequest:
    """The checked parameters of one ``$evaluate-measure`` call."""

    period_start: dt.date
    period_end: dt.date
    subject: str | None = None
    measure: str | None = None


def parse_evaluate_parameters(pairs: Sequence[tuple[str, str]]) -> EvaluateRequest:
    """Check the parameters of ``$evaluate-measure`` (R4 semantics) and return them; ``_Problem`` (400) if bad.

    Names starting with ``_`` (``_format``, ``_pretty``) are ignored; other unknown names are refused.
    """
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith("_"):
            continue
        if name not in _EVALUATE_PARAMETERS:
            raise Problem(HTTPStatus.BAD_REQUEST, "not-supported", f"parameter {name!r} is not supported")
        if name in seen:
            raise Problem(HTTPStatus.BAD_REQUEST, "invalid", f"parameter {name!r} is given more than once")
        seen[name] = value
    for name in ("periodStart", "periodEnd"):
        if not seen.get(name):
            raise Problem(HTTPStatus.BAD_REQUEST, "required", f"{name} is required (a FHIR date)")
    start = _parse_date(seen["periodStart"], "periodStart", end=False)
    end = _parse_date(seen["periodEnd"], "periodEnd", end=True)
    if start > end:
        raise Problem(HTTPStatus.BAD_REQUEST, "invalid", f"periodStart {start} is after periodEnd {end}")
    report_type = seen.get("reportType", "summary")
    if report_type != "summary":
        raise Problem(
            HTTPStatus.BAD_REQUEST,
            "not-supported",
            f"reportType {report_type!r} is not supported; only 'summary' (aggregate counts, no patient data)",
        )
    subject = seen.get("subject")
    if subject is not None and not re.fullmatch(r"Group/[A-Za-z0-9\-.]{1,64}", subject):
        raise Problem(
            HTTPStatus.BAD_REQUEST,
            "not-supported",
            f"subject {subject!r} is not supported; only a Group reference (Group/[id]) for a summary report",
        )
    return EvaluateRequest(start, end, subject, seen.get("measure"))
