"""The project's FHIR conformance artefacts, and a checker of the MeasureReports we write.

The FHIR package compiled from ``profiles/`` (FSH, built by SUSHI) ships inside the wheel under
``fhir_pts/data/profiles/``: CodeSystems, ValueSets, the ConceptMap template, the two Questionnaires, the
profiles and extensions, and one Measure per measure id of the contract (§4). It is the machine-readable
single source of truth for the contract; ``docs/profiles.md`` describes it for integration engineers.

- :func:`load_package` — every packaged resource, by canonical URL.
- :func:`measure`, :func:`questionnaire` — one Measure / Questionnaire by id (or canonical).
- :func:`check_measure_report` — conformance of a MeasureReport (a JSON dict) to our profile
  ``pts-measure-report`` and the DEQM summary invariants deqm-0 … deqm-9; returns the list of problems.
- :func:`deqm_problems` — the DEQM invariants alone, in FHIRPath (the project's one DEQM check, which
  :func:`check_measure_report` calls).
- :func:`check_resource` — an input resource (index stenting, reintervention, patency finding, score total)
  against its input profile, for integration engineers checking what their server sends.
"""

from __future__ import annotations

from fhir_pts.conformance.deqm import deqm_problems
from fhir_pts.conformance.fhirpath import fhirpath_available
from fhir_pts.conformance.inputs import INPUT_PROFILES, check_resource, infer_profile
from fhir_pts.conformance.measure_report import MEASURE_REPORT_PROFILE, check_measure_report
from fhir_pts.conformance.package import load_package, measure, package_manifest, questionnaire

__all__ = [
    "INPUT_PROFILES",
    "MEASURE_REPORT_PROFILE",
    "check_measure_report",
    "check_resource",
    "deqm_problems",
    "fhirpath_available",
    "infer_profile",
    "load_package",
    "measure",
    "package_manifest",
    "questionnaire",
]
