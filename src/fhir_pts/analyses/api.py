"""The analysis plugin API: what an analysis describes itself with, what it returns, and what the host makes of it.

These types are the whole contract between an analysis plugin and the host: a plugin describes its measure
with :class:`AnalysisInfo` and returns an :class:`AnalysisResult` (of :class:`Statistic` rows and
:class:`CurvePoint` curves); the host runs it into an :class:`AnalysisOutcome` and turns that into a FHIR
``MeasureReport`` and rows of ``results.csv`` without knowing anything else about the plugin. Plugins import them
from :mod:`fhir_pts.plugin`, with the rest of the plugin API (``docs/plugins.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fhir_pts.codes import MEASURE_BASE

Scoring = Literal["proportion", "ratio", "continuous-variable", "cohort"]


@dataclass(frozen=True)
class AnalysisInfo:
    """An analysis and the FHIR ``Measure`` it reports on.

    ``id`` is the measure id (``{base}/Measure/<id>``, the ``measure`` column of ``results.csv``).
    ``scoring`` is the FHIR measure-scoring code; ``improvement_notation`` ``increase`` / ``decrease`` /
    ``None``; ``default_parameters`` are the analysis' parameters and their defaults (overridable per run).
    """

    id: str
    title: str
    description: str
    scoring: Scoring = "cohort"
    improvement_notation: Literal["increase", "decrease"] | None = None
    version: str = "0.1.0"
    default_parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def measure_url(self) -> str:
        return f"{MEASURE_BASE}/{self.id}"

    @property
    def measure_canonical(self) -> str:
        """The versioned canonical a MeasureReport names: ``url|version``."""
        return f"{self.measure_url}|{self.version}"


@dataclass(frozen=True)
class Statistic:
    """One number of an analysis: a row of ``results.csv`` (without the measure id).

    ``value`` is ``None`` when it cannot be computed (e.g. an empty cohort); ``ci_low`` / ``ci_high`` bound the
    95 % confidence interval where there is one; ``p_value`` is two-sided; ``n`` is the number of patients the
    statistic was computed on; ``unit`` a UCUM unit (``mo``, ``a``, ``1``, ``{score}``) where meaningful.
    """

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    n: int | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        for attr in ("value", "ci_low", "ci_high", "p_value"):
            v = getattr(self, attr)
            if v is not None and isinstance(v, float) and math.isnan(v):
                object.__setattr__(self, attr, None)


@dataclass(frozen=True)
class CurvePoint:
    """One step of a survival curve: ``time_months`` from day 0 (the index procedure; 1 month = 30.4375 days),
    the estimate just after the events at that time, its 95 % CI (None where undefined) and the number at risk
    just before it (patients whose event or censoring time is ≥ ``time_months``)."""

    time_months: float
    estimate: float
    ci_low: float | None
    ci_high: float | None
    at_risk: int


@dataclass
class AnalysisResult:
    """What an analysis returns.

    ``statistics``: every number, in the order they should be listed.
    ``populations``: FHIR measure-population codes (``initial-population``, ``denominator``, ``numerator``,
    ``denominator-exclusion``, ``measure-population``, ``measure-observation`` ...) → counts.
    ``score``: name of the statistic reported as ``group.measureScore`` (``None``: no score).
    ``curves``: named survival curves (e.g. ``kaplan-meier``) carried in the MeasureReport as extensions.
    ``notes``: human-readable remarks (e.g. why a statistic is empty).
    ``aggregates``: the sufficient statistics that make pooling across sites exact (optional;
    :mod:`fhir_pts.analyses.aggregates`): written into the shared MeasureReport, never into ``results.csv``.
    """

    statistics: list[Statistic]
    populations: dict[str, int] = field(default_factory=dict)
    score: str | None = None
    curves: dict[str, list[CurvePoint]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    aggregates: list[Any] = field(default_factory=list)

    def statistic(self, name: str) -> Statistic:
        for s in self.statistics:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass
class AnalysisOutcome:
    """One analysis as run by the host: its info, the plugin that ran it, and its result or its failure.

    Exactly one of ``result`` / ``error`` is set. ``error`` is a one-line message (exception type and text);
    a failed analysis is reported in the outputs and does not stop the others. ``parameters``: the analysis'
    parameters as run (defaults updated with the run's overrides).
    """

    info: AnalysisInfo
    plugin: str
    result: AnalysisResult | None = None
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result is not None
