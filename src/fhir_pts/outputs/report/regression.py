"""The regression section (OLS of the score gains, forest plot) and the generic tables of other analyses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhir_pts.analyses.api import AnalysisOutcome
from fhir_pts.outputs.figures import ForestRow, forest_figure
from fhir_pts.outputs.report.formatting import fmt_ci, fmt_num, fmt_p
from fhir_pts.outputs.report.scores import shift_analysis
from fhir_pts.outputs.report.values import GenericResult, Table

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext

REGRESSIONS: dict[str, str] = {
    "villalta-gain-regression": "Villalta gain",
    "civiq20-gain-regression": "CIVIQ-20 gain",
}
TERM_LABELS: dict[str, str] = {
    "intercept": "Intercept",
    "baseline_villalta": "Baseline Villalta (per point)",
    "baseline_civiq20": "Baseline CIVIQ-20 (per point)",
    "age": "Age (per year)",
    "stented_segments": "Stented segments (per segment)",
}


def regressions(ctx: ReportContext) -> dict[str, Any]:
    models = []
    forest: dict[str, list[ForestRow]] = {}
    regressions = {**REGRESSIONS, **{i.measure_ids[1]: f"{i.title} gain" for i in ctx.plugin_instruments}}
    labels = {
        **TERM_LABELS,
        **{f"baseline_{i.id}": f"Baseline {i.title} (per point)" for i in ctx.plugin_instruments},
    }
    for measure, title in regressions.items():
        outcome = ctx.by_id.get(measure)
        if outcome is None or outcome.result is None:
            models.append({"title": title, "table": None, "unavailable": ctx.unavailable(measure)})
            continue
        rows = []
        frows = []
        for s in outcome.result.statistics:
            if not s.name.startswith("coef:"):
                continue
            term = s.name.split(":", 1)[1]
            label = labels.get(term, term.replace("_", " "))
            rows.append([label, fmt_num(s.value, 3), fmt_ci(s, 3), fmt_p(s.p_value)])
            if term != "intercept":
                frows.append(ForestRow(label, s.value, s.ci_low, s.ci_high))
        n, r2 = ctx.value(measure, "n"), ctx.value(measure, "r_squared")
        caption = f"n = {fmt_num(n)} complete cases · R² = {fmt_num(r2, 3)}"
        table = Table(["Term", "β", "95 % CI", "p"], rows, caption=f"{title} (OLS): {caption}")
        name = f"regression-{measure.removesuffix('-regression')}"
        models.append({"title": title, "table": ctx.named(table, name)})
        forest[f"{title} (n = {fmt_num(n)})"] = frows
    fig = ctx.figure(
        forest_figure(forest),
        "regression-forest",
        "Regression coefficients with 95 % confidence intervals (intercept not shown); a coefficient whose "
        "interval does not cross the dashed line (β = 0) is significantly associated with the gain.",
        "Forest plot of the regression coefficients",
    )
    return {"models": models, "figure": fig}


def generic(ctx: ReportContext, outcome: AnalysisOutcome) -> GenericResult:
    assert outcome.result is not None
    units = any(s.unit not in (None, "", "1") for s in outcome.result.statistics)
    rows = [
        [s.name, fmt_num(s.value, 3), fmt_ci(s, 3), fmt_p(s.p_value), "" if s.n is None else str(s.n)]
        + ([s.unit or ""] if units else [])
        for s in outcome.result.statistics
    ]
    return GenericResult(
        outcome.info.title,
        outcome.info.id,
        outcome.plugin,
        outcome.info.description,
        Table(["Statistic", "Value", "95 % CI", "p", "n", *(["Unit"] if units else [])], rows),
        [ctx.scrub(n) for n in outcome.result.notes],
    )


def others(ctx: ReportContext) -> dict[str, Any]:
    failed = [o for o in ctx.outcomes if not o.ok]
    shown = shift_analysis(ctx)  # its numbers are the class-shift table of the scores section
    return {
        "extra": [
            generic(ctx, o)
            for o in ctx.outcomes
            if o.info.id not in ctx.special_measures and o.ok and o is not shown
        ],
        "shown_elsewhere": None if shown is None else shown.info.title,
        "failed": Table(
            ["Measure", "Plugin", "Error"],
            [[o.info.id, o.plugin, ctx.scrub(o.error or "unknown error")] for o in failed],
            cls="text",
        )
        if failed
        else None,
    }
