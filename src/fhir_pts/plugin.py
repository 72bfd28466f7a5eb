"""The plugin API in one import, as ``pytest`` re-exports what plugins need from ``_pytest``.

An analysis plugin implements :func:`~fhir_pts.hookspecs.fhir_pts_describe_analyses` and
:func:`~fhir_pts.hookspecs.fhir_pts_run_analysis`; an instrument plugin implements
:func:`~fhir_pts.hookspecs.fhir_pts_instruments` (``docs/plugins.md``)::

    from fhir_pts.plugin import AnalysisInfo, AnalysisResult, Cohort, Statistic, hookimpl, stats

Every name here is the object of its home module (``fhir_pts.analyses.api``, ``fhir_pts.cohort.model``,
``fhir_pts.instruments``, ``fhir_pts.hookspecs``); those imports keep working.
"""

from __future__ import annotations

from fhir_pts.analyses import stats
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, CurvePoint, Scoring, Statistic
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.hookspecs import hookimpl
from fhir_pts.instruments import (
    Answers,
    ExtraColumn,
    Instrument,
    Scored,
    SummedScore,
    Unscorable,
    answer_values_of,
)

__all__ = [
    "AnalysisInfo",
    "AnalysisResult",
    "Answers",
    "Cohort",
    "CurvePoint",
    "ExtraColumn",
    "Instrument",
    "Scored",
    "Scoring",
    "Statistic",
    "SummedScore",
    "TimePointWindows",
    "Unscorable",
    "answer_values_of",
    "hookimpl",
    "stats",
]
