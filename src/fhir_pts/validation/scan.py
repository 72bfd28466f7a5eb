"""Reading the raw resources: the resource checks, and what the facts do not keep (dates, instruments)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fhir_pts.adapters.common import VersionKey, codings, parse_day, reference_id
from fhir_pts.adapters.questionnaire_response import questionnaire_canonical
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Instrument, InstrumentIndex
from fhir_pts.sources.files import iter_resources
from fhir_pts.sources.prefilter import CandidateFilter
from fhir_pts.validation.questionnaire import check_questionnaire_response
from fhir_pts.validation.report import _QUESTIONNAIRE_NAME, Json, ResourceViolation


@dataclass(frozen=True)
class _Record:
    """What the per-patient explanations need to know of one resource beyond its facts."""

    resource_type: str
    resource_id: str
    patient_id: str | None
    instrument: str | None  # the instrument id (villalta, civiq20, a plugin's) of score resources
    day: dt.date | None
    file: str | None = None
    line: int | None = None


def _instrument(resource: Json, index: InstrumentIndex) -> str | None:
    kind = resource.get("resourceType")
    if kind == "QuestionnaireResponse":
        spec = index.questionnaires.get(questionnaire_canonical(resource.get("questionnaire")) or "")
        return spec.instrument if spec is not None else None
    if kind == "Observation":
        return next((index.totals[c].instrument for c in codings(resource.get("code")) if c in index.totals), None)
    return None


def _resource_day(resource: Json) -> dt.date | None:
    for key in ("performedDateTime", "effectiveDateTime", "authored"):
        if key in resource:
            return parse_day(resource.get(key))
    for key in ("performedPeriod", "effectivePeriod"):
        period = resource.get(key)
        if isinstance(period, dict):
            return parse_day(period.get("start"))
    return None


def _check(
    resource: Json, file: str, line: int, plugin_questionnaires: Mapping[str, Json] | None = None
) -> list[ResourceViolation] | None:
    """The check failures of one resource; ``None`` when no input profile or packaged Questionnaire applies.

    ``plugin_questionnaires``: canonical → the Questionnaire a plugin's instrument ships (checked the same way)."""
    from fhir_pts import conformance

    kind = str(resource.get("resourceType"))
    found: list[tuple[str, str]]
    if kind == "QuestionnaireResponse":
        canonical = questionnaire_canonical(resource.get("questionnaire")) or ""
        name = _QUESTIONNAIRE_NAME.get(canonical)
        shipped = (plugin_questionnaires or {}).get(canonical)
        if name is None and shipped is None:
            return None
        questionnaire = _packaged_questionnaire(name) if name is not None else shipped
        name = name or str(shipped.get("name") or shipped.get("id") or canonical)  # type: ignore[union-attr]
        found = [(f"questionnaire:{name}", m) for m in check_questionnaire_response(resource, questionnaire)]
    elif kind in ("Procedure", "Observation"):
        profile = conformance.infer_profile(resource)
        if profile is None:
            return None
        found = [(profile, m.removeprefix(f"{profile}: ")) for m in conformance.check_resource(resource, profile)]
    else:
        return None
    resource_id = resource.get("id")
    patient_id = reference_id(resource.get("subject"), "Patient")
    return [
        ResourceViolation(kind, str(resource_id) if resource_id else None, patient_id, check, message, file, line)
        for check, message in found
    ]


_QUESTIONNAIRES: dict[str, Json] = {}


def _packaged_questionnaire(name: str) -> Json:
    if name not in _QUESTIONNAIRES:
        from fhir_pts import conformance

        _QUESTIONNAIRES[name] = conformance.questionnaire(name)
    return _QUESTIONNAIRES[name]


def _scan(
    files: Sequence[Path],
    candidates: CandidateFilter,
    instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS,
) -> tuple[list[ResourceViolation], dict[str, _Record], int]:
    """Check every candidate resource of the files; remember the score resources and procedures by id."""
    index = InstrumentIndex.of(list(instruments))
    shipped = {
        canonical: dict(i.questionnaire)
        for i in instruments
        if i.questionnaire is not None and i.id not in {b.id for b in BUILTIN_INSTRUMENTS}
        for canonical in i.questionnaires
    }
    violations: list[ResourceViolation] = []
    records: dict[str, _Record] = {}
    versions: dict[str, VersionKey] = {}
    checked = 0
    for path in files:
        for raw in iter_resources(path, candidates=candidates, problems=[]):
            resource = raw.resource
            kind = resource.get("resourceType")
            if kind not in ("Procedure", "Observation", "QuestionnaireResponse"):
                continue
            found = _check(resource, raw.file, raw.line, shipped)
            if found is not None:
                checked += 1
                violations.extend(found)
            resource_id = resource.get("id")
            key = f"{kind}/{resource_id}"
            version = VersionKey.of(resource)
            if resource_id and (key not in versions or version.wins_over(versions[key])):
                versions[key] = version  # the copy the run uses (contract §1, duplicates)
                records[key] = _Record(
                    str(kind),
                    str(resource_id),
                    reference_id(resource.get("subject"), "Patient"),
                    _instrument(resource, index),
                    _resource_day(resource),
                    raw.file,
                    raw.line,
                )
    return violations, records, checked
