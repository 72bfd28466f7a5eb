"""The Villalta / CIVIQ-20 section (and a plugin instrument's): paired comparison, gains, the class shift."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from fhir_pts.analyses.api import AnalysisOutcome, Statistic
from fhir_pts.outputs.figures import MAX_PAIR_LINES, ScorePanel, scores_figure
from fhir_pts.outputs.report.formatting import NA, fmt_ci, fmt_num, fmt_p, fmt_pct
from fhir_pts.outputs.report.values import Stack, Table

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext

VILLALTA_CLASSES: tuple[str, ...] = ("none", "mild", "moderate", "severe")


def scores(ctx: ReportContext) -> dict[str, Any]:
    extra = ctx.plugin_instruments
    annotations = {}
    for measure in ("villalta", "civiq20", *(i.id for i in extra)):
        w = ctx.stat(measure, "wilcoxon")
        n = ctx.value(measure, "n_pairs")
        annotations[measure] = (
            f"n = {fmt_num(n)} pairs · Wilcoxon p {fmt_p(w.p_value)}" if w is not None else f"n = {fmt_num(n)}"
        )
    panels = [
        ScorePanel("Villalta score (0–33)", "baseline_villalta", "followup_villalta", annotations["villalta"],
                   "Villalta score (higher = more severe PTS)"),
        ScorePanel("CIVIQ-20 raw score (20–100)", "baseline_civiq20", "followup_civiq20", annotations["civiq20"],
                   "CIVIQ-20 (higher = worse quality of life)"),
        *(ScorePanel(f"{i.title} {i.score_label}", f"baseline_{i.id}", f"followup_{i.id}", annotations[i.id],
                     f"{i.title} ({'higher' if i.improvement_notation == 'decrease' else 'lower'} = worse)")
          for i in extra),
    ]  # fmt: skip
    most = max((ctx.value(m, "n_pairs") or 0 for m in ("villalta", "civiq20", *(i.id for i in extra))),
               default=0)  # fmt: skip
    if most > MAX_PAIR_LINES:
        caption = (f"Scores at baseline and 3 months in patients with both: boxes show median and interquartile "
                   f"range, points the outliers (with more than {MAX_PAIR_LINES} pairs, lines per patient are "
                   "not drawn).")  # fmt: skip
    else:
        caption = ("Scores at baseline and 3 months in patients with both: one line joins the two scores of one "
                   "patient (blue improved, red worsened, grey unchanged); boxes show median and interquartile "
                   "range.")  # fmt: skip
    fig = ctx.figure(
        scores_figure(ctx.patients, panels),
        "scores-before-after",
        caption,
        "Villalta and CIVIQ-20 scores before and after stenting",
    )
    rows = []
    named = (("villalta", "Villalta"), ("civiq20", "CIVIQ-20 (raw)"), *((i.id, i.title) for i in extra))
    for measure, title in named:
        outcome = ctx.by_id.get(measure)
        if outcome is None or outcome.result is None:
            rows.append([title, NA, "", "", "", "", "", ""])
            continue
        v = {s: ctx.value(measure, s) for s in (
            "n_pairs", "baseline_median", "baseline_q1", "baseline_q3", "followup_median", "followup_q1",
            "followup_q3")}  # fmt: skip
        w = ctx.stat(measure, "wilcoxon")
        mean, hl = gain_estimates(ctx, measure)
        rows.append(
            [
                title,
                fmt_num(v["n_pairs"]),
                f"{fmt_num(v['baseline_median'])} ({fmt_num(v['baseline_q1'])}–{fmt_num(v['baseline_q3'])})",
                f"{fmt_num(v['followup_median'])} ({fmt_num(v['followup_q1'])}–{fmt_num(v['followup_q3'])})",
                Stack(fmt_num(None if mean is None else mean.value, 2, fixed=True),
                      (fmt_ci(mean, 2, fixed=True),) if mean else ()),
                Stack(fmt_num(None if hl is None else hl.value, 2, fixed=True),
                      (fmt_ci(hl, 2, fixed=True),) if hl else ()),
                fmt_num(None if w is None else w.value),
                fmt_p(None if w is None else w.p_value),
            ]
        )
    titles = ["Villalta", "CIVIQ-20", *(i.title for i in extra)]
    return {
        "heading": f"{', '.join(titles[:-1])} and {titles[-1]} before and 3 months after stenting",
        "figure": fig,
        "table": ctx.named(
            Table(
                ["Score", "Pairs", "Baseline median (IQR)", "3 months median (IQR)", "Mean gain (95 % CI, t)",
                 "Median gain, Hodges–Lehmann (95 % CI)", "Wilcoxon V", "p"],
                rows,
                caption="Paired comparison (complete pairs; gain = baseline − 3 months, positive = improvement; "
                "Wilcoxon signed-rank test with the Hodges–Lehmann estimate of the median gain)",
            ),
            "scores-paired",
        ),
        "class_shift": class_shift(ctx),
        "unavailable": [
            ctx.unavailable(m) for m in ("villalta", "civiq20", *(i.id for i in extra)) if not ctx.ok(m)
        ],
    }


def gain_estimates(ctx: ReportContext, stem: str) -> tuple[Statistic | None, Statistic | None]:
    """Mean gain with its t CI and the Hodges–Lehmann median gain with its CI, on the complete pairs of the
    cohort's ``baseline_<stem>`` / ``followup_<stem>`` (:mod:`fhir_pts.analyses.paired`, as R's ``t.test`` and
    ``wilcox.test(conf.int = TRUE)``; the same pairs as the paired analysis)."""
    from fhir_pts.analyses import paired

    b = pd.to_numeric(ctx.column(f"baseline_{stem}"), errors="coerce").astype(float).to_numpy()
    f = pd.to_numeric(ctx.column(f"followup_{stem}"), errors="coerce").astype(float).to_numpy()
    if not len(b):
        return None, None
    mean, hl = paired.mean_difference(b, f), paired.hodges_lehmann(b, f)
    return (Statistic("gain_mean", mean.estimate, mean.ci_low, mean.ci_high),
            Statistic("gain_hodges_lehmann", hl.estimate, hl.ci_low, hl.ci_high))  # fmt: skip


def shift_analysis(ctx: ReportContext) -> AnalysisOutcome | None:
    """An analysis that reports the Villalta class shift matrix (``shift_<from>_to_<to>``), if one ran."""
    wanted = {f"shift_{b}_to_{f}" for b in VILLALTA_CLASSES for f in VILLALTA_CLASSES}
    for outcome in ctx.outcomes:
        if outcome.result is not None and wanted <= {s.name for s in outcome.result.statistics}:
            return outcome
    return None


def class_shift(ctx: ReportContext) -> dict[str, Any] | None:
    """The Villalta class shift: the numbers of the analysis that reports it, else counted from the cohort."""
    source = shift_analysis(ctx)
    if source is not None and source.result is not None:
        cells = {s.name: int(s.value or 0) for s in source.result.statistics if s.name.startswith("shift_")}
        rows = []
        for b in VILLALTA_CLASSES:
            counts = [cells[f"shift_{b}_to_{f}"] for f in VILLALTA_CLASSES]
            rows.append([b.capitalize(), *map(str, counts), str(sum(counts))])
        totals = [sum(cells[f"shift_{b}_to_{f}"] for b in VILLALTA_CLASSES) for f in VILLALTA_CLASSES]
        rows.append(["Total", *map(str, totals), str(sum(totals))])
        n = sum(totals)
        improved = sum(cells[f"shift_{b}_to_{f}"] for i, b in enumerate(VILLALTA_CLASSES)
                       for f in VILLALTA_CLASSES[:i])  # fmt: skip
        header = ["Baseline class ↓ / 3-month class →", *[c.capitalize() for c in VILLALTA_CLASSES], "Total"]
        caption = (f"Patients with both classes: {n} (none 0–4, mild 5–9, moderate 10–14, severe ≥ 15 or ulcer); "
                   f"from the analysis {source.info.id} (plugin {source.plugin})")  # fmt: skip
        prop = next((s for s in source.result.statistics if s.name == "proportion_improved"), None)
        ci = f", 95 % CI {fmt_ci(prop, 1, 100.0)} %" if prop is not None and prop.ci_low is not None else ""
        return {"table": ctx.named(Table(header, rows, caption=caption), "villalta-class-shift"),
                "improved": improved, "n": n, "improved_pct": fmt_pct(improved, n) + ci}  # fmt: skip
    base = ctx.column("baseline_villalta_class").astype("string")
    follow = ctx.column("followup_villalta_class").astype("string")
    both = base.notna() & follow.notna()
    if not bool(both.any()):
        return None
    table = pd.crosstab(base[both], follow[both])
    header = ["Baseline class ↓ / 3-month class →", *[c.capitalize() for c in VILLALTA_CLASSES], "Total"]
    rows = []
    for b in VILLALTA_CLASSES:
        counts = [int(table.loc[b, f]) if b in table.index and f in table.columns else 0 for f in VILLALTA_CLASSES]
        rows.append([b.capitalize(), *map(str, counts), str(sum(counts))])
    totals = [int(table[f].sum()) if f in table.columns else 0 for f in VILLALTA_CLASSES]
    rows.append(["Total", *map(str, totals), str(sum(totals))])
    improved = sum(
        int(table.loc[b, f])
        for i, b in enumerate(VILLALTA_CLASSES)
        for f in VILLALTA_CLASSES[:i]
        if b in table.index and f in table.columns
    )
    n = int(both.sum())
    caption = f"Patients with both classes: {n} (none 0–4, mild 5–9, moderate 10–14, severe ≥ 15 or ulcer)"
    return {"table": ctx.named(Table(header, rows, caption=caption), "villalta-class-shift"),
            "improved": improved, "n": n, "improved_pct": fmt_pct(improved, n)}  # fmt: skip
