"""The plugin API in one import, as ``pytest`` re-exports what plugins need from ``_pytest``.

An analysis plugin implements :func:`~fhir_pts.hookspecs.fhir_pts_describe_analyses` and
:func:`~fhir_pts.hookspecs.fhir_pts_run_analysis`; an instrument plugin implements
:func:`~fhir_pts.hookspecs.fhir_pts_instruments` (``docs/plugins.md``)::

    from fhir_pts.plugin import AnalysisInfo, AnalysisResult, Cohort, Statistic, hookimpl, stats

Every name here is the object of its home module (``fhir_pts.analyses.api``, ``fhir_pts.cohort.model``,
``fhir_pts.instruments``, ``fhir_pts.hookspecs``); those imports keep working. ``stats``
(:mod:`fhir_pts.analyses.stats`: scipy, statsmodels, lifelines) is imported when first asked for, so that a
plugin that only declares its analyses — and ``fhir-pts analyses``, which loads every plugin — stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from fhir_pts.analyses import stats


def __getattr__(name: str) -> Any:
    if name == "stats":
        from fhir_pts.analyses import stats as module

        globals()["stats"] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
