"""The descriptive sections: key-result cards, Table 1 (baseline characteristics), procedure outcomes and
the patients in the paired analysis against those left out."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pandas as pd

from fhir_pts.outputs.report.formatting import NA, fmt_ci, fmt_num, fmt_p, fmt_pct, fmt_percent, median_iqr
from fhir_pts.outputs.report.patency import PATENCY_MEASURES
from fhir_pts.outputs.report.scores import VILLALTA_CLASSES
from fhir_pts.outputs.report.values import Card, Row, Table, Unavailable

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext


def key_results(ctx: ReportContext) -> list[Card]:
    cards: list[Card] = []
    for measure, title in (
        ("technical-success", "Technical success"),
        ("major-complications", "Major complications"),
    ):
        num, den = ctx.value(measure, "numerator"), ctx.value(measure, "denominator")
        value = f"{fmt_num(num)}/{fmt_num(den)}" if num is not None else NA
        cards.append(Card(title, value, fmt_pct(num, den) if num is not None else ""))
    med = ctx.stat("imaging-follow-up", "median_months")
    q1, q3 = ctx.value("imaging-follow-up", "q1_months"), ctx.value("imaging-follow-up", "q3_months")
    cards.append(
        Card(
            "Median imaging follow-up",
            f"{fmt_num(med.value)} months" if med is not None and med.value is not None else NA,
            f"IQR {fmt_num(q1)}–{fmt_num(q3)}" if q1 is not None else "",
        )
    )
    for measure, title in PATENCY_MEASURES.items():
        km12 = ctx.stat(measure, "km_12m")
        cards.append(
            Card(
                f"{title} at 12 months",
                fmt_percent(km12.value) if km12 is not None and km12.value is not None else NA,
                f"95 % CI {fmt_ci(km12, 1, 100.0)} %" if km12 is not None and km12.ci_low is not None else "",
            )
        )
    for measure, title in (("villalta", "Villalta"), ("civiq20", "CIVIQ-20")):
        b, f = ctx.value(measure, "baseline_median"), ctx.value(measure, "followup_median")
        w = ctx.stat(measure, "wilcoxon")
        cards.append(
            Card(
                f"{title} median, baseline → 3 months",
                f"{fmt_num(b)} → {fmt_num(f)}" if b is not None else NA,
                f"Wilcoxon p {fmt_p(w.p_value)}" if w is not None and w.p_value is not None else "",
            )
        )
    return cards


def table1(ctx: ReportContext) -> Table | None:
    p = ctx.patients
    n = len(p)
    if n == 0:
        return None
    rows: list[Row] = [Row(("Patients", str(n)))]
    sex = ctx.column("sex").astype("string")
    rows.append(Row(("Sex, n (%)", ""), "group"))
    for value, label in (("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown")):
        k = int((sex == value).fillna(False).sum())
        if k or value in ("female", "male"):
            rows.append(Row((label, f"{k} ({fmt_pct(k, n)})"), "indent"))
    missing_sex = int(sex.isna().sum())
    if missing_sex:
        rows.append(Row(("Not recorded", f"{missing_sex} ({fmt_pct(missing_sex, n)})"), "indent"))
    age = pd.to_numeric(ctx.column("age"), errors="coerce").dropna().astype(float)
    if age.empty:
        rows.append(Row(("Age, years, mean ± SD (range)", NA)))
    else:
        sd = age.std(ddof=1) if len(age) > 1 else float("nan")
        rows.append(
            Row(
                (
                    "Age, years, mean ± SD (range)",
                    f"{fmt_num(age.mean())} ± {fmt_num(sd)} ({fmt_num(age.min())}–{fmt_num(age.max())})"
                    + (f" [n = {len(age)}]" if len(age) != n else ""),
                )
            )
        )
    segs = pd.to_numeric(ctx.column("stented_segments"), errors="coerce")
    rows.append(Row(("Stented segments, n (%)", ""), "group"))
    for k, c in sorted(Counter(int(v) for v in segs.dropna()).items()):
        rows.append(Row((f"{k} segment{'s' if k != 1 else ''}", f"{c} ({fmt_pct(c, n)})"), "indent"))
    if segs.isna().any():
        c = int(segs.isna().sum())
        rows.append(Row(("Not recorded", f"{c} ({fmt_pct(c, n)})"), "indent"))
    known = ctx.column("below_inguinal_ligament").dropna()
    k = int(known.astype(bool).sum()) if len(known) else 0
    rows.append(
        Row(
            (
                "Stenting below the inguinal ligament, n (%)",
                f"{k} ({fmt_pct(k, len(known))})" + (f" [of {len(known)} with data]" if len(known) != n else ""),
            )
        )
    )
    for column, label in (
        ("baseline_villalta", "Baseline Villalta score, median (IQR)"),
        ("baseline_civiq20", "Baseline CIVIQ-20 raw score (20–100), median (IQR)"),
        ("baseline_civiq20_gis", "Baseline CIVIQ-20 Global Index Score (0–100), median (IQR)"),
    ):
        values = pd.to_numeric(ctx.column(column), errors="coerce").dropna()
        rows.append(Row((label, median_iqr(values) + (f" [n = {len(values)}]" if len(values) != n else ""))))
    classes = ctx.column("baseline_villalta_class").astype("string")
    rows.append(Row(("Baseline PTS severity (Villalta class), n (%)", ""), "group"))
    for cls in VILLALTA_CLASSES:
        c = int((classes == cls).fillna(False).sum())
        rows.append(Row((cls.capitalize(), f"{c} ({fmt_pct(c, n)})"), "indent"))
    c = int(classes.isna().sum())
    if c:
        rows.append(Row(("Not assessed", f"{c} ({fmt_pct(c, n)})"), "indent"))
    ulcer = ctx.column("baseline_ulcer").dropna()
    if len(ulcer):
        k = int(ulcer.astype(bool).sum())
        rows.append(Row(("Venous ulcer at baseline, n (%)", f"{k} ({fmt_pct(k, len(ulcer))})")))
    caption = f"Table 1. Baseline characteristics of the {n} patients with an index stenting procedure"
    return ctx.named(Table(["Characteristic", "Value"], rows, caption=caption), "table1-baseline")


def procedure(ctx: ReportContext) -> dict[str, Any]:
    rows = []
    for measure, label in (
        ("technical-success", "Technical success"),
        ("major-complications", "Major complications"),
    ):
        num, den = ctx.value(measure, "numerator"), ctx.value(measure, "denominator")
        prop = ctx.stat(measure, "proportion")
        if num is None and den is None:
            rows.append([label, NA, "—", "—"])
            continue
        rows.append([label, f"{fmt_num(num)}/{fmt_num(den)}", fmt_pct(num, den), fmt_ci(prop, 1, 100.0) + " %"])
    follow_up: Table | Unavailable
    if ctx.ok("imaging-follow-up"):
        med, q1, q3, rkm = (
            ctx.value("imaging-follow-up", s)
            for s in ("median_months", "q1_months", "q3_months", "reverse_km_median_months")
        )
        follow_up = Table(
            ["Imaging follow-up", "Months"],
            [
                ["Median (IQR) time to the last patency finding", f"{fmt_num(med)} ({fmt_num(q1)}–{fmt_num(q3)})"],
                ["Reverse Kaplan–Meier median (potential follow-up)", fmt_num(rkm)],
            ],
        )
    else:
        follow_up = ctx.unavailable("imaging-follow-up")
    return {
        "table": ctx.named(
            Table(["Outcome", "Patients", "%", "95 % CI (Clopper–Pearson)"], rows, caption="Procedure outcomes"),
            "procedure-outcomes",
        ),
        "unknown_technical": ctx.count(ctx.column("technical_success").isna()) if len(ctx.patients) else 0,
        "follow_up": follow_up,
    }


def included_vs_excluded(ctx: ReportContext) -> Table | None:
    """Patients in the Villalta paired analysis (complete pairs) against the other patients with an index
    procedure: are those left out different? Descriptive only (STROBE item 14)."""
    p = ctx.patients
    if len(p) == 0:
        return None
    inside = (ctx.column("baseline_villalta").notna() & ctx.column("followup_villalta").notna()).to_numpy()
    groups = {"In the paired analysis": p[inside], "Left out (no complete pair)": p[~inside]}
    if not len(groups["Left out (no complete pair)"]) or not len(groups["In the paired analysis"]):
        return None

    def mean_sd(frame: pd.DataFrame, column: str) -> str:
        values = pd.to_numeric(frame[column], errors="coerce").dropna().astype(float) if column in frame else []
        if len(values) == 0:
            return NA
        sd = values.std(ddof=1) if len(values) > 1 else float("nan")
        return f"{fmt_num(values.mean())} ± {fmt_num(sd)}"

    def share(frame: pd.DataFrame, column: str, value: object) -> str:
        known = frame[column].dropna() if column in frame else pd.Series([], dtype="object")
        k = int((known == value).sum())
        return f"{k} ({fmt_pct(k, len(known))})" if len(known) else NA

    def median(frame: pd.DataFrame, column: str) -> str:
        values = pd.to_numeric(frame[column], errors="coerce").dropna() if column in frame else pd.Series([])
        return median_iqr(values) + (f" [n = {len(values)}]" if len(values) != len(frame) else "")

    rows = [
        ["Patients", *[str(len(f)) for f in groups.values()]],
        ["Age, years, mean ± SD", *[mean_sd(f, "age") for f in groups.values()]],
        ["Female, n (%)", *[share(f, "sex", "female") for f in groups.values()]],
        ["Stented segments, median (IQR)", *[median(f, "stented_segments") for f in groups.values()]],
        ["Technical success, n (%)", *[share(f, "technical_success", True) for f in groups.values()]],
        ["Baseline Villalta, median (IQR)", *[median(f, "baseline_villalta") for f in groups.values()]],
        ["Baseline CIVIQ-20, median (IQR)", *[median(f, "baseline_civiq20") for f in groups.values()]],
    ]
    table = Table(["Characteristic", *groups], rows, caption="Patients in the Villalta paired analysis and the "
                  "patients with an index procedure left out of it (descriptive; no test)")  # fmt: skip
    return ctx.named(table, "included-vs-excluded")
