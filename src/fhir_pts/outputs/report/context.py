"""The report's context builder: every number and text the templates show, computed from the run.

Numbers come from the :class:`~fhir_pts.analyses.api.AnalysisOutcome` statistics wherever an analysis
computes them (so the report and ``results.csv`` agree); descriptive tables are computed from the cohort.
Markup lives in the templates (``templates/``); this module hands them plain values: :class:`Table`,
:class:`FigureRef`, cards and notes. Figures are drawn and saved here (SVG + PNG under ``figures/``).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fhir_pts.analyses.api import AnalysisOutcome, Statistic
from fhir_pts.codes import CONTRACT_MEASURES
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.figures import (
    MAX_PAIR_LINES,
    PATENCY_COLOURS,
    ForestRow,
    KmCurve,
    RenderedFigure,
    ScorePanel,
    flow_figure,
    forest_figure,
    km_figure,
    km_min_at_risk,
    save_figure,
    scores_figure,
)
from fhir_pts.outputs.report.flow import generic_reason, patient_flow
from fhir_pts.outputs.report.formatting import (
    NA,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_percent,
    median_iqr,
    signed,
)
from fhir_pts.outputs.report.provenance import RunInfo
from fhir_pts.outputs.report.pseudonyms import Pseudonyms, salt_from_fingerprints

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Measures the report lays out in their own section; every other measure goes to the generic tables.
SPECIAL_MEASURES: frozenset[str] = frozenset(CONTRACT_MEASURES)
PATENCY_MEASURES: dict[str, str] = {
    "primary-patency": "Primary patency",
    "primary-assisted-patency": "Primary-assisted patency",
    "secondary-patency": "Secondary patency",
}
KM_MONTHS: tuple[int, ...] = (6, 12, 24, 36)
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
VILLALTA_CLASSES: tuple[str, ...] = ("none", "mild", "moderate", "severe")
#: Reasons shown per group of the data-quality table (the others are counted).
MAX_REASONS_SHOWN = 3
#: Longest patient-level list printed per reason (the rest is counted; ``cohort.csv`` has every patient).
MAX_LISTED_IDS = 200


# --- what the templates receive -----------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """A table cell of one main value and smaller lines under it (a CI, a number at risk)."""

    main: str
    subs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mono:
    """A table cell in a monospaced font (a digest)."""

    text: str


Cell = str | Stack | Mono


@dataclass(frozen=True)
class Row:
    """A table row; ``kind`` is ``""``, ``group`` (a heading row) or ``indent`` (a level under a group)."""

    cells: tuple[Cell, ...]
    kind: str = ""


@dataclass
class Table:
    """A table: header, rows (:class:`Row` or plain sequences of cells), caption; ``cls`` ``text`` aligns left.

    A table with a ``name`` is also written as ``tables/<name>.csv`` and ``.docx`` and linked from the page.
    """

    header: Sequence[str]
    rows: Sequence[Row | Sequence[Cell]]
    caption: str = ""
    cls: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        self.rows = [r if isinstance(r, Row) else Row(tuple(r)) for r in self.rows]


@dataclass(frozen=True)
class FigureRef:
    """A figure as the page shows it: embedded SVG (base64), caption, alternative text, file name stem."""

    name: str
    svg_base64: str
    caption: str
    alt: str


@dataclass(frozen=True)
class Unavailable:
    """An analysis whose section is empty: not run (``error`` None), or failed with ``error``."""

    measure: str
    error: str | None = None


@dataclass(frozen=True)
class Card:
    """A key-result card: what, the value, a detail line."""

    key: str
    value: str
    detail: str


@dataclass
class GenericResult:
    """One analysis as a generic statistics table (plugins, and the full statistics of the built-ins)."""

    title: str
    measure: str
    plugin: str
    description: str
    table: Table
    notes: list[str]


# --- the builder ----------------------------------------------------------------------------------


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
        """Save ``fig`` under ``figures/`` (SVG + PNG) and return it for embedding; ``None`` stays ``None``."""
        if fig is None:
            return None
        rendered = save_figure(fig, self.figures_dir, name)
        self.figures.append(rendered)
        if self.on_step is not None:
            self.on_step(f"figure {name}")
        return FigureRef(name, base64.b64encode(rendered.svg).decode("ascii"), caption, alt)

    # -- sections --
    def header(self) -> dict[str, Any]:
        return {
            "n": len(self.patients),
            "started": self.run_info.started.isoformat(timespec="seconds"),
            "version": self.run_info.versions.get("fhir-pts"),
            # contract inputs the source could not provide: every result is marked incomplete
            "data_gaps": [self.scrub(g) for g in getattr(self.cohort, "data_gaps", [])],
        }

    def key_results(self) -> list[Card]:
        cards: list[Card] = []
        for measure, title in (
            ("technical-success", "Technical success"),
            ("major-complications", "Major complications"),
        ):
            num, den = self.value(measure, "numerator"), self.value(measure, "denominator")
            value = f"{fmt_num(num)}/{fmt_num(den)}" if num is not None else NA
            cards.append(Card(title, value, fmt_pct(num, den) if num is not None else ""))
        med = self.stat("imaging-follow-up", "median_months")
        q1, q3 = self.value("imaging-follow-up", "q1_months"), self.value("imaging-follow-up", "q3_months")
        cards.append(
            Card(
                "Median imaging follow-up",
                f"{fmt_num(med.value)} months" if med is not None and med.value is not None else NA,
                f"IQR {fmt_num(q1)}–{fmt_num(q3)}" if q1 is not None else "",
            )
        )
        for measure, title in PATENCY_MEASURES.items():
            km12 = self.stat(measure, "km_12m")
            cards.append(
                Card(
                    f"{title} at 12 months",
                    fmt_percent(km12.value) if km12 is not None and km12.value is not None else NA,
                    f"95 % CI {fmt_ci(km12, 1, 100.0)} %" if km12 is not None and km12.ci_low is not None else "",
                )
            )
        for measure, title in (("villalta", "Villalta"), ("civiq20", "CIVIQ-20")):
            b, f = self.value(measure, "baseline_median"), self.value(measure, "followup_median")
            w = self.stat(measure, "wilcoxon")
            cards.append(
                Card(
                    f"{title} median, baseline → 3 months",
                    f"{fmt_num(b)} → {fmt_num(f)}" if b is not None else NA,
                    f"Wilcoxon p {fmt_p(w.p_value)}" if w is not None and w.p_value is not None else "",
                )
            )
        return cards

    def flow(self) -> dict[str, Any]:
        stages = patient_flow(self.cohort, self.outcomes)
        fig = self.figure(
            flow_figure(stages),
            "patient-flow",
            "Patient flow (CONSORT/STROBE style; boxes count patients): from the patients in the data to each "
            "analysis. Patency analyses cover every patient with an index procedure; score analyses use complete "
            "baseline/3-month pairs; regressions use complete cases. The boxes on the right give, for each arrow, "
            "the patients who do not reach the next stage and why.",
            "Patient flow diagram",
        )
        rows = [[s.title, s.count, "; ".join(s.excluded) or "—"] for s in stages]
        extra = {k: v for k, v in self.cohort.flow.items() if k not in {"patients_in_data", "with_index_procedure"}}
        table = Table(["Stage", "Patients", "Not carried to the next stage (reason)"], rows, cls="text",
                      caption="Patient flow (patients, not records; skipped records are in the data-quality section)")
        return {
            "figure": fig,
            "table": self.named(table, "patient-flow"),
            "counts": Table(["Count", "Value"], [[k.replace("_", " "), str(v)] for k, v in extra.items()])
            if extra
            else None,
        }

    def table1(self) -> Table | None:
        p = self.patients
        n = len(p)
        if n == 0:
            return None
        rows: list[Row] = [Row(("Patients", str(n)))]
        sex = self.column("sex").astype("string")
        rows.append(Row(("Sex, n (%)", ""), "group"))
        for value, label in (("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown")):
            k = int((sex == value).fillna(False).sum())
            if k or value in ("female", "male"):
                rows.append(Row((label, f"{k} ({fmt_pct(k, n)})"), "indent"))
        missing_sex = int(sex.isna().sum())
        if missing_sex:
            rows.append(Row(("Not recorded", f"{missing_sex} ({fmt_pct(missing_sex, n)})"), "indent"))
        age = pd.to_numeric(self.column("age"), errors="coerce").dropna().astype(float)
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
        segs = pd.to_numeric(self.column("stented_segments"), errors="coerce")
        rows.append(Row(("Stented segments, n (%)", ""), "group"))
        for k, c in sorted(Counter(int(v) for v in segs.dropna()).items()):
            rows.append(Row((f"{k} segment{'s' if k != 1 else ''}", f"{c} ({fmt_pct(c, n)})"), "indent"))
        if segs.isna().any():
            c = int(segs.isna().sum())
            rows.append(Row(("Not recorded", f"{c} ({fmt_pct(c, n)})"), "indent"))
        known = self.column("below_inguinal_ligament").dropna()
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
            values = pd.to_numeric(self.column(column), errors="coerce").dropna()
            rows.append(Row((label, median_iqr(values) + (f" [n = {len(values)}]" if len(values) != n else ""))))
        classes = self.column("baseline_villalta_class").astype("string")
        rows.append(Row(("Baseline PTS severity (Villalta class), n (%)", ""), "group"))
        for cls in VILLALTA_CLASSES:
            c = int((classes == cls).fillna(False).sum())
            rows.append(Row((cls.capitalize(), f"{c} ({fmt_pct(c, n)})"), "indent"))
        c = int(classes.isna().sum())
        if c:
            rows.append(Row(("Not assessed", f"{c} ({fmt_pct(c, n)})"), "indent"))
        ulcer = self.column("baseline_ulcer").dropna()
        if len(ulcer):
            k = int(ulcer.astype(bool).sum())
            rows.append(Row(("Venous ulcer at baseline, n (%)", f"{k} ({fmt_pct(k, len(ulcer))})")))
        caption = f"Table 1. Baseline characteristics of the {n} patients with an index stenting procedure"
        return self.named(Table(["Characteristic", "Value"], rows, caption=caption), "table1-baseline")

    def procedure(self) -> dict[str, Any]:
        rows = []
        for measure, label in (
            ("technical-success", "Technical success"),
            ("major-complications", "Major complications"),
        ):
            num, den = self.value(measure, "numerator"), self.value(measure, "denominator")
            prop = self.stat(measure, "proportion")
            if num is None and den is None:
                rows.append([label, NA, "—", "—"])
                continue
            rows.append([label, f"{fmt_num(num)}/{fmt_num(den)}", fmt_pct(num, den), fmt_ci(prop, 1, 100.0) + " %"])
        follow_up: Table | Unavailable
        if self.ok("imaging-follow-up"):
            med, q1, q3, rkm = (
                self.value("imaging-follow-up", s)
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
            follow_up = self.unavailable("imaging-follow-up")
        return {
            "table": self.named(
                Table(["Outcome", "Patients", "%", "95 % CI (Clopper–Pearson)"], rows, caption="Procedure outcomes"),
                "procedure-outcomes",
            ),
            "unknown_technical": self.count(self.column("technical_success").isna()) if len(self.patients) else 0,
            "follow_up": follow_up,
        }

    def patency(self) -> dict[str, Any]:
        curves = []
        for measure, title in PATENCY_MEASURES.items():
            outcome = self.by_id.get(measure)
            if outcome is not None and outcome.result is not None and outcome.result.curves.get("kaplan-meier"):
                colour = PATENCY_COLOURS[measure.replace("-", "_")]
                curves.append(KmCurve(title, colour, outcome.result.curves["kaplan-meier"]))
        drawn = km_figure(curves)
        fig, stops = drawn if drawn is not None else (None, {})
        if curves:
            self.km_min_at_risk = km_min_at_risk(max(int(c.points[0].at_risk) for c in curves if c.points) or 0)
        stop_text = ", ".join(f"{label.replace(' patency', '').lower()} at {fmt_num(t)} months"
                              for label, t in stops.items())  # fmt: skip
        caption = (
            "Kaplan–Meier estimates of primary, primary-assisted and secondary patency from the index procedure "
            "(day 0) as computed by the patency analyses, with 95 % log-log confidence bands; vertical ticks mark "
            "censored patients (last patency finding). Each curve stops where fewer than "
            f"{self.km_min_at_risk} patients (10 %, at least 5) remain at risk ({stop_text}). Number at risk: "
            "patients whose time is at least that long."
        )
        fig_ref = self.figure(fig, "kaplan-meier-patency", caption, "Kaplan–Meier curves of stent patency")
        header = ["Definition", "Patients", "Events", "Patent at last follow-up"] + [f"{m} months" for m in KM_MONTHS]
        rows: list[list[Cell]] = []
        for measure, title in PATENCY_MEASURES.items():
            outcome = self.by_id.get(measure)
            if outcome is None or outcome.result is None:
                rows.append([title, NA, "", "", *["" for _ in KM_MONTHS]])
                continue
            last = self.value(measure, "patent_at_last_follow_up")
            prop = self.value(measure, "proportion_at_last_follow_up")
            cells: list[Cell] = [
                title,
                fmt_num(self.value(measure, "patients")),
                fmt_num(self.value(measure, "events")),
                f"{fmt_num(last)} ({fmt_percent(prop)})",
            ]
            for m in KM_MONTHS:
                km = self.stat(measure, f"km_{m}m")
                risk = self.value(measure, f"at_risk_{m}m")
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
        return {"figure": fig_ref, "table": self.named(table, "patency-kaplan-meier")}

    @property
    def plugin_instruments(self) -> list[Any]:
        """The cohort's instruments besides the contract's two (a plugin's VCSS ...), in declaration order."""
        return [i for i in getattr(self.cohort, "instruments", ()) if i.id not in ("villalta", "civiq20")]

    @property
    def special_measures(self) -> frozenset[str]:
        """Measures laid out in their own sections: the contract's and those of the plugins' instruments."""
        return SPECIAL_MEASURES | {m for i in self.plugin_instruments for m in i.measure_ids}

    def scores(self) -> dict[str, Any]:
        extra = self.plugin_instruments
        annotations = {}
        for measure in ("villalta", "civiq20", *(i.id for i in extra)):
            w = self.stat(measure, "wilcoxon")
            n = self.value(measure, "n_pairs")
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
        most = max((self.value(m, "n_pairs") or 0 for m in ("villalta", "civiq20", *(i.id for i in extra))),
                   default=0)  # fmt: skip
        if most > MAX_PAIR_LINES:
            caption = (f"Scores at baseline and 3 months in patients with both: boxes show median and interquartile "
                       f"range, points the outliers (with more than {MAX_PAIR_LINES} pairs, lines per patient are "
                       "not drawn).")  # fmt: skip
        else:
            caption = ("Scores at baseline and 3 months in patients with both: one line joins the two scores of one "
                       "patient (blue improved, red worsened, grey unchanged); boxes show median and interquartile "
                       "range.")  # fmt: skip
        fig = self.figure(
            scores_figure(self.patients, panels),
            "scores-before-after",
            caption,
            "Villalta and CIVIQ-20 scores before and after stenting",
        )
        rows = []
        named = (("villalta", "Villalta"), ("civiq20", "CIVIQ-20 (raw)"), *((i.id, i.title) for i in extra))
        for measure, title in named:
            outcome = self.by_id.get(measure)
            if outcome is None or outcome.result is None:
                rows.append([title, NA, "", "", "", "", "", ""])
                continue
            v = {s: self.value(measure, s) for s in (
                "n_pairs", "baseline_median", "baseline_q1", "baseline_q3", "followup_median", "followup_q1",
                "followup_q3")}  # fmt: skip
            w = self.stat(measure, "wilcoxon")
            mean, hl = self.gain_estimates(measure)
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
            "table": self.named(
                Table(
                    ["Score", "Pairs", "Baseline median (IQR)", "3 months median (IQR)", "Mean gain (95 % CI, t)",
                     "Median gain, Hodges–Lehmann (95 % CI)", "Wilcoxon V", "p"],
                    rows,
                    caption="Paired comparison (complete pairs; gain = baseline − 3 months, positive = improvement; "
                    "Wilcoxon signed-rank test with the Hodges–Lehmann estimate of the median gain)",
                ),
                "scores-paired",
            ),
            "class_shift": self.class_shift(),
            "unavailable": [
                self.unavailable(m) for m in ("villalta", "civiq20", *(i.id for i in extra)) if not self.ok(m)
            ],
        }

    def gain_estimates(self, stem: str) -> tuple[Statistic | None, Statistic | None]:
        """Mean gain with its t CI and the Hodges–Lehmann median gain with its CI, on the complete pairs of the
        cohort's ``baseline_<stem>`` / ``followup_<stem>`` (:mod:`fhir_pts.analyses.paired`, as R's ``t.test`` and
        ``wilcox.test(conf.int = TRUE)``; the same pairs as the paired analysis)."""
        from fhir_pts.analyses import paired

        b = pd.to_numeric(self.column(f"baseline_{stem}"), errors="coerce").astype(float).to_numpy()
        f = pd.to_numeric(self.column(f"followup_{stem}"), errors="coerce").astype(float).to_numpy()
        if not len(b):
            return None, None
        mean, hl = paired.mean_difference(b, f), paired.hodges_lehmann(b, f)
        return (Statistic("gain_mean", mean.estimate, mean.ci_low, mean.ci_high),
                Statistic("gain_hodges_lehmann", hl.estimate, hl.ci_low, hl.ci_high))  # fmt: skip

    def shift_analysis(self) -> AnalysisOutcome | None:
        """An analysis that reports the Villalta class shift matrix (``shift_<from>_to_<to>``), if one ran."""
        wanted = {f"shift_{b}_to_{f}" for b in VILLALTA_CLASSES for f in VILLALTA_CLASSES}
        for outcome in self.outcomes:
            if outcome.result is not None and wanted <= {s.name for s in outcome.result.statistics}:
                return outcome
        return None

    def class_shift(self) -> dict[str, Any] | None:
        """The Villalta class shift: the numbers of the analysis that reports it, else counted from the cohort."""
        source = self.shift_analysis()
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
            return {"table": self.named(Table(header, rows, caption=caption), "villalta-class-shift"),
                    "improved": improved, "n": n, "improved_pct": fmt_pct(improved, n) + ci}  # fmt: skip
        base = self.column("baseline_villalta_class").astype("string")
        follow = self.column("followup_villalta_class").astype("string")
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
        return {"table": self.named(Table(header, rows, caption=caption), "villalta-class-shift"),
                "improved": improved, "n": n, "improved_pct": fmt_pct(improved, n)}  # fmt: skip

    def regressions(self) -> dict[str, Any]:
        models = []
        forest: dict[str, list[ForestRow]] = {}
        regressions = {**REGRESSIONS, **{i.measure_ids[1]: f"{i.title} gain" for i in self.plugin_instruments}}
        labels = {
            **TERM_LABELS,
            **{f"baseline_{i.id}": f"Baseline {i.title} (per point)" for i in self.plugin_instruments},
        }
        for measure, title in regressions.items():
            outcome = self.by_id.get(measure)
            if outcome is None or outcome.result is None:
                models.append({"title": title, "table": None, "unavailable": self.unavailable(measure)})
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
            n, r2 = self.value(measure, "n"), self.value(measure, "r_squared")
            caption = f"n = {fmt_num(n)} complete cases · R² = {fmt_num(r2, 3)}"
            table = Table(["Term", "β", "95 % CI", "p"], rows, caption=f"{title} (OLS): {caption}")
            name = f"regression-{measure.removesuffix('-regression')}"
            models.append({"title": title, "table": self.named(table, name)})
            forest[f"{title} (n = {fmt_num(n)})"] = frows
        fig = self.figure(
            forest_figure(forest),
            "regression-forest",
            "Regression coefficients with 95 % confidence intervals (intercept not shown); a coefficient whose "
            "interval does not cross the dashed line (β = 0) is significantly associated with the gain.",
            "Forest plot of the regression coefficients",
        )
        return {"models": models, "figure": fig}

    def generic(self, outcome: AnalysisOutcome) -> GenericResult:
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
            [self.scrub(n) for n in outcome.result.notes],
        )

    def others(self) -> dict[str, Any]:
        failed = [o for o in self.outcomes if not o.ok]
        shown = self.shift_analysis()  # its numbers are the class-shift table of the scores section
        return {
            "extra": [
                self.generic(o)
                for o in self.outcomes
                if o.info.id not in self.special_measures and o.ok and o is not shown
            ],
            "shown_elsewhere": None if shown is None else shown.info.title,
            "failed": Table(
                ["Measure", "Plugin", "Error"],
                [[o.info.id, o.plugin, self.scrub(o.error or "unknown error")] for o in failed],
                cls="text",
            )
            if failed
            else None,
        }

    def problems(self) -> dict[str, Any] | None:
        """Skipped or doubtful records, grouped by resource type, field and severity (the most frequent reasons
        of each group shown, the rest counted; ``problems.csv`` has every record)."""
        problems = self.cohort.problems
        if not problems:
            return None
        groups: dict[tuple[str, str, str], Counter[str]] = {}
        for p in problems:
            key = (p.resource_type, p.field or "", p.severity)
            groups.setdefault(key, Counter())[self.scrub(generic_reason(p.reason, p.field))] += 1
        rows = []
        for (rt, fld, sev), reasons in sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
            top = reasons.most_common(MAX_REASONS_SHOWN)
            lines = [f"{reason} ({c})" for reason, c in top]
            if len(reasons) > MAX_REASONS_SHOWN:
                rest = sum(reasons.values()) - sum(c for _, c in top)
                more = len(reasons) - MAX_REASONS_SHOWN
                lines.append(f"… {more} other variant(s), {rest} record(s): see problems.csv")
            rows.append([rt, fld, sev, str(sum(reasons.values())), Stack(lines[0], tuple(lines[1:]))])
        by_type = Counter(p.resource_type for p in problems)
        table = Table(["Resource type", "Field", "Severity", "Records", "Reasons (records)"], rows, cls="text",
                      caption="Records skipped or doubtful, by resource type, field and severity")  # fmt: skip
        return {
            "total": len(problems),
            "by_type": ", ".join(f"{t}: {c}" for t, c in sorted(by_type.items())),
            "records_without_patient": self.cohort.flow.get("facts_without_patient"),
            "skipped": sum(1 for p in problems if p.severity == "skipped"),
            "table": self.named(table, "data-quality"),
        }

    def included_vs_excluded(self) -> Table | None:
        """Patients in the Villalta paired analysis (complete pairs) against the other patients with an index
        procedure: are those left out different? Descriptive only (STROBE item 14)."""
        p = self.patients
        if len(p) == 0:
            return None
        inside = (self.column("baseline_villalta").notna() & self.column("followup_villalta").notna()).to_numpy()
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
        return self.named(table, "included-vs-excluded")

    def methods(self) -> str:
        """The generated methods paragraph (plain text; see ``templates/methods.txt.j2``)."""
        from fhir_pts.outputs.report import environment

        w = self.cohort.windows
        values = {
            "min_at_risk": self.km_min_at_risk or 5,
            "baseline_start": signed(w.baseline_start),
            "baseline_end": signed(w.baseline_end),
            "followup_target": w.followup_target,
            "followup_start": w.followup_start,
            "followup_end": w.followup_end,
            "versions": self.run_info.versions,
        }
        return environment().get_template("methods.txt.j2").render(m=values).strip() + "\n"

    def patient_lists(self) -> dict[str, Any] | None:
        p = self.patients
        if len(p) == 0 or "patient_id" not in p:
            return None
        lists = {
            "Technical failure": self.column("technical_success") == False,  # noqa: E712
            "Technical outcome not recorded": self.column("technical_success").isna(),
            "No baseline Villalta": self.column("baseline_villalta").isna(),
            "No 3-month Villalta": self.column("followup_villalta").isna(),
            "No baseline CIVIQ-20": self.column("baseline_civiq20").isna(),
            "No 3-month CIVIQ-20": self.column("followup_civiq20").isna(),
        }
        rows = []
        for label, mask in lists.items():
            ids = sorted(self.names.pid(i) for i in p.loc[mask.fillna(False).astype(bool).to_numpy(), "patient_id"])
            if ids:
                shown = ", ".join(ids[:MAX_LISTED_IDS])
                if len(ids) > MAX_LISTED_IDS:
                    shown += f" … and {len(ids) - MAX_LISTED_IDS} more (see cohort.csv)"
                rows.append([label, str(len(ids)), shown])
        if not rows:
            return None
        return {
            "what": "pseudonymised ids (salted SHA-256)" if self.hash_patient_ids else "FHIR Patient ids",
            "table": Table(["Reason", "Patients", "Ids"], rows, cls="text"),
        }

    def provenance(self) -> dict[str, Any]:
        ri = self.run_info
        params = [
            [str(k), self.scrub(json.dumps(v, default=str, sort_keys=True) if not isinstance(v, str) else v)]
            for k, v in sorted(ri.parameters.items())
        ]
        inputs = (
            Table(
                ["Input file", "Fingerprint (XXH3-128 tree, python -m fhir_pts.sources.fingerprint)"],
                [[self.scrub(path), Mono(h)] for path, h in ri.inputs],
                cls="text",
                caption=f"Input fingerprints ({len(ri.inputs)} file(s))",
            )
            if ri.inputs
            else None
        )
        return {
            "run": Table(
                ["Run", ""],
                [["Started", ri.started.isoformat(timespec="seconds")], ["Command", self.scrub(ri.command)]],
                cls="text",
            ),
            "parameters": Table(["Parameter", "Value"], params, cls="text") if params else None,
            "software": Table(["Software", "Version"], sorted(ri.versions.items()), cls="text"),
            "inputs": inputs,
        }

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
) -> dict[str, Any]:
    """Every value the templates show, section by section (figures are saved under ``figures_dir`` meanwhile)."""
    ctx = ReportContext(cohort, list(outcomes), run_info, hash_patient_ids, figures_dir, comparison_html, on_step)
    return {
        "header": ctx.header(),
        "nav": ctx.sections(),
        "cards": ctx.key_results(),
        "flow": ctx.flow(),
        "table1": ctx.table1(),
        "procedure": ctx.procedure(),
        "patency": ctx.patency(),
        "scores": ctx.scores(),
        "regression": ctx.regressions(),
        "other": ctx.others(),
        "comparison_html": comparison_html,
        "included": ctx.included_vs_excluded(),
        "problems": ctx.problems(),
        "patient_lists": ctx.patient_lists(),
        "provenance": ctx.provenance(),
        "methods": ctx.methods(),
        "tables": ctx.tables,
    }
