"""``fhir_pts.validate``: the name the CLI, the tests and ``docs/validate.md`` use for :mod:`fhir_pts.validation`."""

from __future__ import annotations

from fhir_pts.validation import (
    ANALYSES,
    ROW_COLUMNS,
    AnalysisStatus,
    PatientReport,
    ResourceViolation,
    ValidationReport,
    check_questionnaire_response,
    validate,
)
from fhir_pts.validation.run import run_validate

__all__ = [
    "ANALYSES",
    "ROW_COLUMNS",
    "AnalysisStatus",
    "PatientReport",
    "ResourceViolation",
    "ValidationReport",
    "check_questionnaire_response",
    "run_validate",
    "validate",
]
