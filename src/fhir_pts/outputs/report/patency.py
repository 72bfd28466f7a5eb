"""The stent-patency section: the patency analyses' Kaplan–Meier curves (drawn as computed) and their table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhir_pts.outputs.figures import PATENCY_COLOURS, KmCurve, km_figure, km_layout
from fhir_pts.outputs.report.formatting import NA, fmt_ci, fmt_num, fmt_percent
from fhir_pts.outputs.report.values import Cell, Stack, Table

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext

PATENCY_MEASURES: dict[str, str] = {
    "primary-patency": "Primary patency",
    "primary-assisted-patency": "Primary-assisted patency",
    "secondary-patency": "Secondary patency",
}
KM_MONTHS: tuple[int, ...] = (6, 12, 24, 36)


def patency(ctx: ReportContext) -> dict[str, Any]:
    """The patency section: the analyses' curves drawn as computed (:func:`~fhir_pts.outputs.figures.km_layout`
    decides where each stops), and the Kaplan–Meier table from the analyses' statistics."""
    curves = []
    for measure, title in PATENCY_MEASURES.items():
        outcome = ctx.by_id.get(measure)
        if outcome is not None and outcome.result is not None and outcome.result.curves.get("kaplan-meier"):
            colour = PATENCY_COLOURS[measure.replace("-", "_")]
            curves.append(KmCurve(title, colour, outcome.result.curves["kaplan-meier"]))
    layout = km_layout(curves)  # the stop rule and the numbers at risk, for the figure, caption and methods
    drawn = km_figure(curves, layout=layout) if layout is not None else None
    fig = drawn[0] if drawn is not None else None
    stops = layout.stops if layout is not None else {}
    if layout is not None:
        ctx.km_min_at_risk = layout.min_at_risk
    stop_text = ", ".join(f"{label.replace(' patency', '').lower()} at {fmt_num(t)} months"
                          for label, t in stops.items())  # fmt: skip
    caption = (
        "Kaplan–Meier estimates of primary, primary-assisted and secondary patency from the index procedure "
        "(day 0) as computed by the patency analyses, with 95 % log-log confidence bands; vertical ticks mark "
        "censored patients (last patency finding). Each curve stops where fewer than "
        f"{ctx.km_min_at_risk} patients (10 %, at least 5) remain at risk ({stop_text}). Number at risk: "
        "patients whose time is at least that long."
    )
    fig_ref = ctx.figure(fig, "kaplan-meier-patency", caption, "Kaplan–Meier curves of stent patency")
    header = ["Definition", "Patients", "Events", "Patent at last follow-up"] + [f"{m} months" for m in KM_MONTHS]
    rows: list[list[Cell]] = []
    for measure, title in PATENCY_MEASURES.items():
        outcome = ctx.by_id.get(measure)
        if outcome is None or outcome.result is None:
            rows.append([title, NA, "", "", *["" for _ in KM_MONTHS]])
            continue
        last = ctx.value(measure, "patent_at_last_follow_up")
        prop = ctx.value(measure, "proportion_at_last_follow_up")
        cells: list[Cell] = [
            title,
            fmt_num(ctx.value(measure, "patients")),
            fmt_num(ctx.value(measure, "events")),
            f"{fmt_num(last)} ({fmt_percent(prop)})",
        ]
        for m in KM_MONTHS:
            km = ctx.stat(measure, f"km_{m}m")
            risk = ctx.value(measure, f"at_risk_{m}m")
            if km is None or km.value is None:
                cells.append("beyond follow-up" if km is not None else NA)
                continue
            subs = []
            if km.ci_low is not None:
                subs.append(fmt_ci(km, 1, 100.0))
            if risk is not None:
                subs.append(f"at risk {fmt_num(risk)}")
            cells.append(Stack(fmt_percent(km.value), tuple(subs)))
        rows.append(cells)
    table = Table(header, rows, caption="Kaplan–Meier estimates (95 % CI, log-log) and number at risk")
    return {"figure": fig_ref, "table": ctx.named(table, "patency-kaplan-meier")}
