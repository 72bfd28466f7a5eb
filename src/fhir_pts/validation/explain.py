"""Per patient: in or out of each analysis, and the reason, from the cohort's columns, flow and problems."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fhir_pts.adapters.facts import FactSet
from fhir_pts.cohort.model import TimePointWindows
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Instrument
from fhir_pts.problems import Problem
from fhir_pts.validation.report import AnalysisStatus, analyses_of
from fhir_pts.validation.scan import _Record


def _present(row: Mapping[str, Any], name: str) -> bool:
    value = row.get(name)
    return value is not None and not pd.isna(value)


@dataclass
class _Explainer:
    """Turns a cohort row (or its absence), the facts and the problems of a patient into per-analysis reasons."""

    facts: FactSet
    windows: TimePointWindows
    records: dict[str, _Record]
    problems_by_resource: dict[str, list[Problem]]
    unscorable: dict[str, list[Problem]]
    instruments: tuple[Instrument, ...] = BUILTIN_INSTRUMENTS
    _assessments: dict[str, list[Any]] = field(default_factory=dict, init=False)
    _records: dict[str, list[tuple[str, _Record]]] = field(default_factory=dict, init=False)
    _procedure_problems: dict[str, list[Problem]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        assessments: dict[str, list[Any]] = defaultdict(list)
        for fact in self.facts.assessments:
            assessments[fact.patient_id].append(fact)
        records: dict[str, list[tuple[str, _Record]]] = defaultdict(list)
        for key, record in self.records.items():
            if record.patient_id is not None:
                records[record.patient_id].append((key, record))
        procedure_problems: dict[str, list[Problem]] = defaultdict(list)
        for key, problems in self.problems_by_resource.items():
            if key.startswith("Procedure/"):
                for problem in problems:
                    if problem.patient_id is not None and problem.severity == "skipped":
                        procedure_problems[problem.patient_id].append(problem)
        self._assessments, self._records, self._procedure_problems = assessments, records, procedure_problems

    def statuses(self, patient_id: str, row: Mapping[str, Any] | None) -> list[AnalysisStatus]:
        if row is None:
            reason = self._no_index(patient_id)
            return [AnalysisStatus(a, "out", (reason,)) for a in analyses_of(self.instruments)]
        result: list[AnalysisStatus] = [AnalysisStatus("cohort", "in", self._cohort_notes(row))]
        if _present(row, "technical_success"):
            result.append(AnalysisStatus("technical-success", "in"))
        else:
            result.append(AnalysisStatus("technical-success", "out", (
                "technical outcome unknown: no index-day stenting Procedure has a recognised outcome "
                f"({row.get('index_procedure_ids')})",
            )))  # fmt: skip
        result.append(AnalysisStatus("major-complications", "in"))
        findings = int(row.get("patency_findings") or 0)
        imaging_note: tuple[str, ...] = () if findings else ("no follow-up imaging: imaging follow-up 0 days",)
        result.append(AnalysisStatus("imaging-follow-up", "in", imaging_note))
        for analysis, prefix in (
            ("primary-patency", "primary_patency"),
            ("primary-assisted-patency", "primary_assisted_patency"),
            ("secondary-patency", "secondary_patency"),
        ):
            result.append(AnalysisStatus(analysis, "in", self._patency_note(row, prefix, findings)))
        index_date = dt.date.fromisoformat(str(row["index_date"]))
        regressions = []
        for instrument in self.instruments:
            reasons: list[str] = []
            for when in ("baseline", "followup"):
                if not _present(row, f"{when}_{instrument.id}"):
                    reasons.append(self._score_missing(patient_id, index_date, instrument, when))
            result.append(AnalysisStatus(instrument.id, "out" if reasons else "in", tuple(reasons)))
            regressions.append((instrument.measure_ids[1], instrument.gain_column, instrument.terms))
        for analysis, outcome, terms in regressions:
            missing = [name for name in (outcome, *terms) if not _present(row, name)]
            if not missing:
                result.append(AnalysisStatus(analysis, "in"))
                continue
            reasons = [f"not a complete case: missing {', '.join(missing)}"]
            reasons.extend(self._covariate_reason(name) for name in missing)
            result.append(AnalysisStatus(analysis, "out", tuple(r for r in reasons if r)))
        order = {a: k for k, a in enumerate(analyses_of(self.instruments))}  # the contract's, then the plugins'
        return sorted(result, key=lambda s: order.get(s.analysis, len(order)))

    # -- reasons -----------------------------------------------------------------------------------
    def _no_index(self, patient_id: str) -> str:
        reason = "no index procedure: no completed Procedure coded as venous stenting"
        ignored = self._procedure_problems.get(patient_id, [])
        if ignored:
            reason += " (ignored: " + "; ".join(f"Procedure/{p.resource_id} {p.field}: {p.reason}" for p in ignored)
            reason += ")"
        return reason

    def _cohort_notes(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        notes = []
        if not _present(row, "age"):
            notes.append("age missing (no usable birthDate): left out of the age statistics")
        if not _present(row, "sex"):
            notes.append("sex missing (no Patient.gender)")
        return tuple(notes)

    @staticmethod
    def _patency_note(row: Mapping[str, Any], prefix: str, findings: int) -> tuple[str, ...]:
        if _present(row, "technical_success") and not bool(row["technical_success"]):
            return ("technical failure: patency lost at day 0",)
        if findings == 0:
            return ("no follow-up imaging: censored at day 0",)
        days = row.get(f"{prefix}_days")
        lost = row.get(f"{prefix}_lost")
        if _present(row, f"{prefix}_lost") and bool(lost):
            return (f"patency lost at day {days}",)
        return ()

    def _score_missing(self, patient_id: str, index_date: dt.date, instrument: Instrument, when: str) -> str:
        w = instrument.windows or self.windows
        start, end = (w.baseline_start, w.baseline_end) if when == "baseline" else (w.followup_start, w.followup_end)
        title = f"{'baseline' if when == 'baseline' else '3-month'} {instrument.title} missing"
        facts = [f for f in self._assessments.get(patient_id, []) if f.instrument == instrument.id]
        in_window = [f for f in facts if start <= (f.day - index_date).days <= end]
        details: list[str] = []
        for fact in in_window:
            key = f"{fact.resource_type}/{fact.resource_id}"
            why = self.unscorable.get(key, []) + [
                p for p in self.problems_by_resource.get(key, []) if p.severity == "skipped"
            ]
            text = "; ".join(dict.fromkeys(p.reason for p in why)) or "not scorable"
            details.append(f"{key} (day {(fact.day - index_date).days}) not scorable: {text}")
        if not in_window:
            days = sorted((f.day - index_date).days for f in facts)
            elsewhere = f" (assessments at day {', '.join(map(str, days))})" if days else ""
            details.append(f"no assessment in window [{start}, {end}]{elsewhere}")
        # Resources of this instrument that gave no fact at all (status, date, subject ...).
        fact_keys = {f"{f.resource_type}/{f.resource_id}" for f in facts}
        for key, record in self._records.get(patient_id, []):
            if record.instrument != instrument.id or key in fact_keys:
                continue
            skipped = [p for p in self.problems_by_resource.get(key, []) if p.severity == "skipped"]
            if skipped:
                day = f"day {(record.day - index_date).days}" if record.day else "no date"
                details.append(f"{key} ({day}) ignored: {'; '.join(p.reason for p in skipped)}")
        return f"{title}: {'; '.join(details)}"

    @staticmethod
    def _covariate_reason(name: str) -> str:
        """Why a regression variable is missing, in a few words (the score analyses' own rows say more)."""
        if name == "age":
            return "age: no usable birthDate"
        if name == "stented_segments":
            return "stented_segments: no recognisable bodySite or ICD-10-PCS body part on the index procedure"
        if name.startswith("baseline_"):
            return f"{name}: see {name.removeprefix('baseline_')}"
        return ""  # the gain: the score analysis says why
