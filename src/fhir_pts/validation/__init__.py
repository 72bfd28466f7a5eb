"""``fhir-pts validate``: check an input before a run and say, per patient, why they are in or out of each analysis.

The first thing an integration engineer runs. It reads the INPUT exactly as ``fhir-pts run`` does (files and
folders, or a server fetched into a temporary raw folder by the CLI), then:

1. **resource checks** — every input resource an input profile applies to is checked with
   :func:`fhir_pts.conformance.check_resource`; every Villalta / CIVIQ-20 QuestionnaireResponse is checked
   against the packaged Questionnaire with :func:`check_questionnaire_response`;
2. **contract problems** — the adapters' and the cohort builder's problems (``problems.csv`` of a run);
3. **per patient** — for each patient and each analysis of the contract (§4): in or out, and why (no index
   procedure, technical outcome unknown, baseline / 3-month score missing and which assessment was or was not
   there, regression covariates missing, patency censored at day 0 ...), derived from the cohort's columns, its
   flow, the facts and the problems of the patient's resources;
4. **summary** — counts per analysis in / out, problems and check failures grouped by reason.

:func:`validate` returns a :class:`ValidationReport` (``render_text()``, ``to_rows()``, ``to_json()``); its
``exit_status`` is 0 when nothing failed, 1 when a resource failed a check or a record was skipped. A
patency finding dated on day 0 (completion imaging) is not follow-up by contract §1: it is listed, but as
*expected*, not as a failure. No names or other PHI are printed: only resource ids, fields and reasons.
"""

from __future__ import annotations

from fhir_pts.validation.questionnaire import check_questionnaire_response
from fhir_pts.validation.report import (
    ANALYSES,
    ROW_COLUMNS,
    AnalysisStatus,
    PatientReport,
    ResourceViolation,
    ValidationReport,
)
from fhir_pts.validation.run import run_validate, validate

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

