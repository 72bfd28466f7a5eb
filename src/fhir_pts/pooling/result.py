"""What pooling gives: the sites read, and each measure pooled over them (plain data, no FHIR)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_pts.analyses.aggregates import Aggregate
from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome, AnalysisResult, CurvePoint
from fhir_pts.pooling.combine import PooledStatistic

__all__ = ["PoolResult", "PooledMeasure", "SiteReport"]


@dataclass(frozen=True)
class SiteReport:
    """One site's shared ``measure-reports.json``: its label, where it came from, and its reports by measure id."""

    label: str
    source: str
    bundle_id: str | None
    reports: dict[str, dict[str, Any]]
    failed: tuple[str, ...] = ()


@dataclass
class PooledMeasure:
    """One measure pooled over the sites."""

    info: AnalysisInfo
    parameters: dict[str, Any]
    windows: dict[str, Any]
    statistics: list[PooledStatistic]
    populations: dict[str, int]
    populations_exact: bool
    curves: dict[str, list[CurvePoint]]
    aggregates: list[Aggregate]
    site_aggregates: list[list[Aggregate]]
    period: tuple[str | None, str | None]
    score: str | None
    notes: list[str] = field(default_factory=list)
    poolable: bool = True
    site_min_cell_counts: list[int] = field(default_factory=list)
    site_distributions_shared: list[bool] = field(default_factory=list)

    def outcome(self) -> AnalysisOutcome:
        result = AnalysisResult(
            statistics=[p.statistic for p in self.statistics],
            populations=dict(self.populations),
            score=self.score if any(p.statistic.name == self.score for p in self.statistics) else None,
            curves=dict(self.curves),
            notes=list(self.notes),
            aggregates=list(self.aggregates),
        )
        return AnalysisOutcome(info=self.info, plugin="fhir-pts pool", result=result, parameters=dict(self.parameters))


@dataclass
class PoolResult:
    sites: list[SiteReport]
    measures: list[PooledMeasure]

    def outcomes(self) -> list[AnalysisOutcome]:
        return [m.outcome() for m in self.measures]

    def measure(self, measure_id: str) -> PooledMeasure:
        for m in self.measures:
            if m.info.id == measure_id:
                return m
        raise KeyError(measure_id)
