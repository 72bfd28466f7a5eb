"""The report's context builder: every number and text the templates show, computed from the run.

Numbers come from the :class:`~fhir_pts.analyses.api.AnalysisOutcome` statistics wherever an analysis
computes them (so the report and ``results.csv`` agree); descriptive tables are computed from the cohort.
Markup lives in the templates (``templates/``); the builder hands them plain values (:mod:`.values`).

:class:`ReportContext` holds the run and the helpers every section uses (statistics by name, pseudonymised
ids, named tables, figures); each section is built by a function of its own module:

- :mod:`.descriptive` — key-result cards, Table 1, procedure outcomes, included vs left out;
- :mod:`.flow` — the patient flow (diagram and table);
- :mod:`.patency` — the Kaplan–Meier curves and table;
- :mod:`.scores` — Villalta / CIVIQ-20 before and after, the class shift;
- :mod:`.regression` — the OLS models, the forest plot, the other analyses' generic tables;
- :mod:`.quality` — data quality and the patient-level lists;
- :mod:`.methods` — the generated methods paragraph;
- :mod:`.provenance` — run, parameters, versions, input fingerprints.

Figures are drawn and saved here (SVG + PNG + PDF under ``figures/``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fhir_pts.analyses.api import AnalysisOutcome, Statistic
from fhir_pts.codes import CONTRACT_MEASURES
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.rendering import FigureBatch, RenderedFigure
from fhir_pts.outputs.report import descriptive, quality, regression, scores
from fhir_pts.outputs.report.flow import flow_section
from fhir_pts.outputs.report.methods import methods
from fhir_pts.outputs.report.patency import patency
from fhir_pts.outputs.report.provenance import RunInfo, provenance_section
from fhir_pts.outputs.report.pseudonyms import Pseudonyms, salt_from_fingerprints
from fhir_pts.outputs.report.values import FigureRef, Table, Unavailable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Measures the report lays out in their own section; every other measure goes to the generic tables.
SPECIAL_MEASURES: frozenset[str] = frozenset(CONTRACT_MEASURES)


@dataclass
class ReportContext:
    """Builds everything one report shows (see :func:`build_context`)."""

    cohort: Cohort
    outcomes: list[AnalysisOutcome]
    run_info: RunInfo
    hash_patient_ids: bool
    figures_dir: Path
    comparison_html: str | None = None
    on_step: Callable[[str], None] | None = None
    by_id: dict[str, AnalysisOutcome] = field(init=False)
    names: Pseudonyms = field(init=False)
    figures: list[RenderedFigure] = field(default_factory=list)
    pending: list[tuple[FigureRef, Figure]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    km_min_at_risk: int | None = None

    def __post_init__(self) -> None:
        self.by_id = {o.info.id: o for o in self.outcomes}
        ids = set(self.patients["patient_id"].dropna().astype(str)) if "patient_id" in self.patients else set()
        ids |= {p.patient_id for p in self.cohort.problems if p.patient_id}
        salt = salt_from_fingerprints(h for _, h in self.run_info.inputs)
        self.names = Pseudonyms(salt, frozenset(i for i in ids if i), self.hash_patient_ids)

    @property
    def patients(self) -> pd.DataFrame:
        return self.cohort.patients

    # -- helpers --
    def stat(self, measure: str, name: str) -> Statistic | None:
        outcome = self.by_id.get(measure)
        if outcome is None or outcome.result is None:
            return None
        try:
            return outcome.result.statistic(name)
        except KeyError:
            return None

    def value(self, measure: str, name: str) -> float | None:
        s = self.stat(measure, name)
        return None if s is None else s.value

    def unavailable(self, measure: str) -> Unavailable:
        """Why a measure's section is empty: not run, or failed."""
        outcome = self.by_id.get(measure)
        if outcome is None:
            return Unavailable(measure)
        return Unavailable(measure, self.scrub(outcome.error or "unknown error"))

    def ok(self, measure: str) -> bool:
        return measure in self.by_id and self.by_id[measure].ok

    def scrub(self, text: str) -> str:
        return self.names.scrub(text)

    def column(self, name: str) -> pd.Series:
        if name in self.patients:
            return self.patients[name]
        return pd.Series([pd.NA] * len(self.patients), dtype="object")

    def count(self, mask: pd.Series) -> int:
        return int(mask.fillna(False).astype(bool).sum())

    def named(self, table: Table, name: str) -> Table:
        """Name ``table`` (its download files ``tables/<name>.csv|docx``) and keep it for writing."""
        table.name = name
        self.tables.append(table)
        return table

    def figure(self, fig: Figure | None, name: str, caption: str, alt: str) -> FigureRef | None:
        """Keep ``fig`` for :meth:`save_figures` and return it for embedding; ``None`` stays ``None``."""
        if fig is None:
            return None
        ref = FigureRef(name, "", caption, alt)
        self.pending.append((ref, fig))
        return ref

    def start_figures(self) -> FigureBatch:
        """Start rendering every kept figure (in worker processes where the system allows); the batch's
        ``finish()`` writes each under ``figures/`` (SVG, PNG at 300 dpi, PDF) and embeds its SVG in its
        :class:`FigureRef`."""
        refs = {ref.name: ref for ref, _ in self.pending}

        def saved(figure: RenderedFigure) -> None:
            refs[figure.name].svg_base64 = base64.b64encode(figure.svg).decode("ascii")
            self.figures.append(figure)
            if self.on_step is not None:
                self.on_step(f"figure {figure.name}")

        batch = FigureBatch([(ref.name, fig) for ref, fig in self.pending], self.figures_dir, on_saved=saved)
        self.pending = []
        return batch

    # -- sections --
    def header(self) -> dict[str, Any]:
        return {
            "n": len(self.patients),
            "started": self.run_info.started.isoformat(timespec="seconds"),
            "version": self.run_info.versions.get("fhir-pts"),
            # contract inputs the source could not provide: every result is marked incomplete
            "data_gaps": [self.scrub(g) for g in getattr(self.cohort, "data_gaps", [])],
        }

    @property
    def plugin_instruments(self) -> list[Any]:
        """The cohort's instruments besides the contract's two (a plugin's VCSS ...), in declaration order."""
        return [i for i in getattr(self.cohort, "instruments", ()) if i.id not in ("villalta", "civiq20")]

    @property
    def special_measures(self) -> frozenset[str]:
        """Measures laid out in their own sections: the contract's and those of the plugins' instruments."""
        return SPECIAL_MEASURES | {m for i in self.plugin_instruments for m in i.measure_ids}

    def sections(self) -> list[tuple[str, str]]:
        """``(anchor, title)`` of the sections in page order (the table of contents and the headings' numbers)."""
        titles = [
            ("key", "Key results"),
            ("flow", "Patient flow"),
            ("table1", "Table 1 — baseline characteristics"),
            ("procedure", "Procedure outcomes"),
            ("patency", "Stent patency"),
            ("scores", "Villalta and CIVIQ-20"),
            ("regression", "Regression of score gains"),
            ("other", "Other analyses"),
        ]
        if self.comparison_html is not None:
            titles.append(("comparison", "Comparison with the abstract"))
        return [*titles, ("methods", "Methods paragraph"), ("quality", "Data quality"), ("provenance", "Provenance")]


def build_context(
    cohort: Cohort,
    outcomes: Sequence[AnalysisOutcome],
    run_info: RunInfo,
    figures_dir: Path,
    *,
    comparison_html: str | None = None,
    hash_patient_ids: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], FigureBatch]:
    """Every value the templates show, section by section, and the figures the sections drew, rendering (in
    worker processes where the system allows) while the caller goes on: ``finish()`` the batch (it writes them
    under ``figures_dir`` and embeds their SVG in the context) before the page is rendered."""
    ctx = ReportContext(cohort, list(outcomes), run_info, hash_patient_ids, figures_dir, comparison_html, on_step)
    context = {
        "header": ctx.header(),
        "nav": ctx.sections(),
        "cards": descriptive.key_results(ctx),
        "flow": flow_section(ctx),
        "table1": descriptive.table1(ctx),
        "procedure": descriptive.procedure(ctx),
        "patency": patency(ctx),
        "scores": scores.scores(ctx),
        "regression": regression.regressions(ctx),
        "other": regression.others(ctx),
        "comparison_html": comparison_html,
        "included": descriptive.included_vs_excluded(ctx),
        "problems": quality.problems(ctx),
        "patient_lists": quality.patient_lists(ctx),
        "provenance": provenance_section(ctx),
        "methods": methods(ctx),
        "tables": ctx.tables,
    }
    return context, ctx.start_figures()  # the figures the sections kept, all rendered at once
