"""The former name of :mod:`fhir_pts.analyses.api`, kept so that plugins written against earlier
versions still import.

New code imports the plugin API from :mod:`fhir_pts.plugin` (or its home, :mod:`fhir_pts.analyses.api`); nothing
in fhir-pts imports this module (``tests/test_architecture.py`` checks it).
"""

from __future__ import annotations

from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome, AnalysisResult, CurvePoint, Scoring, Statistic

__all__ = ["AnalysisInfo", "AnalysisOutcome", "AnalysisResult", "CurvePoint", "Scoring", "Statistic"]
