"""The report a clinician reads: ``report.html``, one self-contained file, and its figures.

:func:`write_report` writes ``out_dir/report.html`` (styles inline, figures embedded as ``data:`` SVG, no
script, nothing loaded from the network) and the figures as SVG and PNG under ``out_dir/figures/``. Every
file is written atomically (temp file + ``os.replace``). The report holds:

1. key results; 2. the patient flow (diagram + table, reasons of each drop); 3. Table 1 (demographics,
stented segments, baseline scores, from ``cohort.patients``); 4. procedure outcomes; 5. stent patency
(Kaplan–Meier figure with numbers at risk, estimates at 6/12/24/36 months from the MeasureReport
statistics); 6. Villalta and CIVIQ-20 before/after (figure, medians (IQR), Wilcoxon p, Villalta class
shift); 7. regressions of the score gains (tables + forest plot); 8. every other measure as a generic table
and failed analyses with their error; 9. the comparison with the abstract (``demo``); 10. data quality
(problems by resource type and reason); 11. provenance: parameters, versions, input fingerprints.

Numbers come from the :class:`~fhir_pts.analyses.result.AnalysisOutcome` statistics wherever an analysis
computes them (so the report and ``results.csv`` agree); descriptive tables are computed from the cohort.
No names are ever shown; patient ids appear only in the collapsed patient-level lists, replaced by salted
short SHA-256 pseudonyms when ``hash_patient_ids=True``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.metadata
import json
import math
import platform
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fhir_pts.analyses.result import AnalysisOutcome, Statistic
from fhir_pts.codes import CONTRACT_MEASURES
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.figures import (
    FlowStage,
    ForestRow,
    RenderedFigure,
    ScorePanel,
    atomic_write_bytes,
    flow_figure,
    forest_figure,
    km_figure,
    save_figure,
    scores_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "RunInfo",
    "comparison_table_html",
    "default_versions",
    "fingerprint_inputs",
    "generic_reason",
    "patient_flow",
    "pseudonymise",
    "write_report",
]

NA = "not available"
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
_READ_CHUNK = 1 << 20
#: A FHIR id ([A-Za-z0-9-.]{1,64}) as a token of free text; looked up in the set of the cohort's patient ids.
_ID_TOKEN = re.compile(r"[A-Za-z0-9.\-]+")
#: Longest patient-level list printed per reason (the rest is counted; ``cohort.csv`` has every patient).
MAX_LISTED_IDS = 200


# --- run information -------------------------------------------------------------------------


@dataclass
class RunInfo:
    """What the report says about the run: input fingerprints, parameters, versions, start time, command line.

    ``inputs`` are ``(path, sha256 hex)`` pairs (see :func:`fingerprint_inputs`); ``parameters`` the analysis
    and time-window parameters actually used; ``versions`` package → version (see :func:`default_versions`).
    """

    inputs: list[tuple[str, str]]
    parameters: dict[str, object]
    versions: dict[str, str]
    started: datetime
    command: str


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_inputs(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """SHA-256 of every input file, read in 1 MiB chunks (never whole in memory).

    A folder stands for every file under it (recursively, sorted, hidden files included as the sources
    read them). Returns ``(path, hex digest)`` pairs in the order given. A missing path raises
    :class:`FileNotFoundError`.
    """
    result: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                result.append((str(child), _sha256_file(child)))
        elif path.is_file():
            result.append((str(path), _sha256_file(path)))
        else:
            raise FileNotFoundError(str(path))
    return result


def default_versions() -> dict[str, str]:
    """Versions of Python and of the packages whose behaviour shapes the numbers (absent ones are skipped)."""
    versions = {"python": platform.python_version()}
    for package in (
        "fhir-pts",
        "fhir.resources",
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "lifelines",
        "matplotlib",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def pseudonymise(patient_id: str, salt: str) -> str:
    """A short salted SHA-256 pseudonym of ``patient_id`` (``P-`` + 12 hex digits)."""
    return "P-" + hashlib.sha256(f"{salt}\x00{patient_id}".encode()).hexdigest()[:12]


# --- formatting ------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def fmt_num(value: float | None, digits: int = 1, *, fixed: bool = False) -> str:
    """A number with ``digits`` decimals, ``.0`` dropped for whole numbers unless ``fixed``; ``—`` when missing."""
    if _is_missing(value):
        return "—"
    v = float(value)  # type: ignore[arg-type]
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if not fixed and v == round(v) and abs(v) < 1e15:
        return f"{round(v)}".replace("-", "−")
    return f"{v:.{digits}f}".replace("-", "−")


def fmt_p(p: float | None) -> str:
    """A p-value as a clinician reads it: ``< 0.0001``, ``0.0004``, ``0.002``, ``0.049``, ``0.43``, ``> 0.99``."""
    if _is_missing(p):
        return "—"
    p = float(p)  # type: ignore[arg-type]
    if p < 0.0001:
        return "< 0.0001"
    if p < 0.001:
        return f"{p:.4f}"
    if p < 0.0995:  # three decimals around the usual 0.05 threshold (0.049 is not 0.05)
        return f"{p:.3f}"
    return f"{p:.2f}" if p < 0.995 else "> 0.99"


def fmt_pct(num: float | None, den: float | None) -> str:
    if _is_missing(num) or _is_missing(den) or not den:
        return "—"
    return f"{100.0 * float(num) / float(den):.1f} %"  # type: ignore[arg-type]


def fmt_ci(s: Statistic | None, digits: int = 1, scale: float = 1.0) -> str:
    """``low to high`` of a statistic's 95 % CI; with ``scale`` 100 (percent) the decimals are fixed."""
    if s is None or s.ci_low is None or s.ci_high is None:
        return "—"
    fixed = scale != 1.0
    return f"{fmt_num(s.ci_low * scale, digits, fixed=fixed)} to {fmt_num(s.ci_high * scale, digits, fixed=fixed)}"


def fmt_percent(fraction: float | None) -> str:
    """A proportion (0–1) as ``87.7 %``; ``—`` when missing."""
    return "—" if _is_missing(fraction) else f"{fmt_num(float(fraction) * 100, 1, fixed=True)} %"  # type: ignore[arg-type]


def _median_iqr(series: pd.Series, digits: int = 1) -> str:
    values = pd.to_numeric(series, errors="coerce").dropna().astype(float)
    if values.empty:
        return NA
    q1, med, q3 = values.quantile([0.25, 0.5, 0.75]).tolist()
    return f"{fmt_num(med, digits)} ({fmt_num(q1, digits)}–{fmt_num(q3, digits)})"


# --- HTML building blocks --------------------------------------------------------------------


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "", cls: str = "", raw: bool = False
) -> str:
    """An HTML table; cells are escaped unless ``raw``. The first column is a row label."""
    cell = (lambda c: c) if raw else _esc
    parts = [f'<table class="{cls}">' if cls else "<table>"]
    if caption:
        parts.append(f"<caption>{_esc(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _figure_html(fig: RenderedFigure | None, caption: str, alt: str) -> str:
    if fig is None:
        return f'<p class="na">Figure {NA}: no data to draw.</p>'
    data = base64.b64encode(fig.svg).decode("ascii")
    return (
        f'<figure><img src="data:image/svg+xml;base64,{data}" alt="{_esc(alt)}">'
        f'<figcaption>{_esc(caption)} <span class="files">Files: figures/{_esc(fig.name)}.svg, '
        f"figures/{_esc(fig.name)}.png</span></figcaption></figure>"
    )


_CSS = """
:root{--ink:#1d2630;--muted:#5b6773;--line:#d7dde3;--accent:#2f6db0;--soft:#f4f7fa;--warn:#9a5b12}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 "Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;color:var(--ink);
background:#fff}
main{max-width:1080px;margin:0 auto;padding:28px 36px 60px}
header{border-bottom:3px solid var(--accent);padding-bottom:12px;margin-bottom:8px}
h1{font-size:25px;margin:0 0 4px;font-weight:650}
h2{font-size:19px;margin:34px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line);font-weight:650}
h3{font-size:16px;margin:20px 0 6px;font-weight:650}
p{margin:6px 0}
.sub{color:var(--muted);font-size:13.5px;margin:0}
.na{color:var(--muted);font-style:italic}
.note{color:var(--muted);font-size:13px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:14px;min-width:55%}
caption{text-align:left;font-weight:600;padding:4px 0 6px;color:var(--ink)}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--soft);border-bottom:2px solid #b9c3cd;font-weight:600}
td:not(:first-child),th:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
table.text td:not(:first-child),table.text th:not(:first-child){text-align:left}
tr.group td{background:#fafbfc;font-weight:600}
td.indent{padding-left:26px}
figure{margin:12px 0 18px}
figure img{max-width:100%;height:auto;display:block}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
.files{white-space:nowrap}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px;margin:14px 0 6px}
.card{border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:6px;padding:9px 12px;
background:var(--soft)}
.card .k{font-size:12.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}
.card .d{font-size:12.5px;color:var(--muted)}
.error{color:#a3261b;font-weight:600}
.ok{color:#1d7a3a;font-weight:600}
code,.mono{font-family:"DejaVu Sans Mono",Consolas,monospace;font-size:12.5px;word-break:break-all}
details{margin:8px 0}
summary{cursor:pointer;font-weight:600}
nav ol{columns:2;font-size:14px;margin:8px 0}
@media print{main{padding:0}h2{break-after:avoid}figure,table{break-inside:avoid}}
"""


# --- the report ------------------------------------------------------------------------------


def _index(outcomes: Sequence[AnalysisOutcome]) -> dict[str, AnalysisOutcome]:
    return {o.info.id: o for o in outcomes}


@dataclass
class _Report:
    """Builds the sections of one report (internal; see :func:`write_report`)."""

    cohort: Cohort
    outcomes: list[AnalysisOutcome]
    run_info: RunInfo
    hash_patient_ids: bool
    figures_dir: Path
    by_id: dict[str, AnalysisOutcome] = field(init=False)
    salt: str = field(init=False)
    figures: list[RenderedFigure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_id = _index(self.outcomes)
        basis = "|".join(sorted(h for _, h in self.run_info.inputs)) or "fhir-pts"
        self.salt = hashlib.sha256(f"fhir-pts-report\x00{basis}".encode()).hexdigest()
        ids = set(self.patients["patient_id"].dropna().astype(str)) if "patient_id" in self.patients else set()
        ids |= {p.patient_id for p in self.cohort.problems if p.patient_id}
        self._ids = frozenset(i for i in ids if i)

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

    def unavailable(self, measure: str) -> str:
        """Why a measure's section is empty: not run, or failed."""
        outcome = self.by_id.get(measure)
        if outcome is None:
            return f'<p class="na">{NA}: the analysis <code>{_esc(measure)}</code> was not run.</p>'
        return (
            f'<p class="na">{NA}: the analysis <code>{_esc(measure)}</code> failed '
            f'(<span class="error">{_esc(self.scrub(outcome.error or "unknown error"))}</span>).</p>'
        )

    def pid(self, patient_id: object) -> str:
        text = str(patient_id)
        return pseudonymise(text, self.salt) if self.hash_patient_ids else text

    def scrub(self, text: str) -> str:
        """Replace patient ids in free text (problem reasons, errors, paths) by pseudonyms when hashing is on."""
        if not self.hash_patient_ids or not self._ids:
            return text

        def replace(match: re.Match[str]) -> str:
            # ids may contain dots, and so do file names and sentences: try every run of dot-separated parts,
            # longest first ("pat-1.ndjson" -> "pat-1"; "a.b" when "a.b" is an id)
            parts = match.group(0).split(".")
            out: list[str] = []
            i = 0
            while i < len(parts):
                for j in range(len(parts), i, -1):
                    candidate = ".".join(parts[i:j])
                    if candidate in self._ids:
                        out.append(pseudonymise(candidate, self.salt))
                        i = j
                        break
                else:
                    out.append(parts[i])
                    i += 1
            return ".".join(out)

        return _ID_TOKEN.sub(replace, text)

    def column(self, name: str) -> pd.Series:
        if name in self.patients:
            return self.patients[name]
        return pd.Series([pd.NA] * len(self.patients), dtype="object")

    def count(self, mask: pd.Series) -> int:
        return int(mask.fillna(False).astype(bool).sum())

    def add_figure(self, fig: Figure | None, name: str) -> RenderedFigure | None:
        """Save ``fig`` under ``figures/`` (SVG + PNG) and keep it for embedding; ``None`` stays ``None``."""
        if fig is None:
            return None
        rendered = save_figure(fig, self.figures_dir, name)
        self.figures.append(rendered)
        return rendered

    # -- sections --
    def header(self) -> str:
        started = self.run_info.started.isoformat(timespec="seconds")
        n = len(self.patients)
        version = (
            f" · fhir-pts {_esc(self.run_info.versions['fhir-pts'])}" if "fhir-pts" in self.run_info.versions else ""
        )
        return (
            "<header><h1>Endovascular stenting for post-thrombotic syndrome — outcome report</h1>"
            f'<p class="sub">{n} patient{"s" if n != 1 else ""} with an index stenting procedure · '
            f"run started {_esc(started)}{version}</p>"
            '<p class="sub">Produced automatically from FHIR R4 data. Each number is traceable to '
            "<code>results.csv</code> / <code>measure-reports.json</code> and to the input fingerprints "
            "at the end of this report.</p></header>"
        )

    def nav(self, titles: Sequence[tuple[str, str]]) -> str:
        items = "".join(f'<li><a href="#{anchor}">{_esc(title)}</a></li>' for anchor, title in titles)
        return f"<nav><ol>{items}</ol></nav>"

    def key_results(self) -> str:
        cards: list[tuple[str, str, str]] = []
        num, den = self.value("technical-success", "numerator"), self.value("technical-success", "denominator")
        cards.append(
            (
                "Technical success",
                f"{fmt_num(num)}/{fmt_num(den)}" if num is not None else NA,
                fmt_pct(num, den) if num is not None else "",
            )
        )
        num, den = self.value("major-complications", "numerator"), self.value("major-complications", "denominator")
        cards.append(
            (
                "Major complications",
                f"{fmt_num(num)}/{fmt_num(den)}" if num is not None else NA,
                fmt_pct(num, den) if num is not None else "",
            )
        )
        med = self.stat("imaging-follow-up", "median_months")
        q1, q3 = self.value("imaging-follow-up", "q1_months"), self.value("imaging-follow-up", "q3_months")
        cards.append(
            (
                "Median imaging follow-up",
                f"{fmt_num(med.value)} months" if med is not None and med.value is not None else NA,
                f"IQR {fmt_num(q1)}–{fmt_num(q3)}" if q1 is not None else "",
            )
        )
        for measure, title in PATENCY_MEASURES.items():
            km12 = self.stat(measure, "km_12m")
            cards.append(
                (
                    f"{title} at 12 months",
                    fmt_percent(km12.value) if km12 is not None and km12.value is not None else NA,
                    f"95 % CI {fmt_ci(km12, 1, 100.0)} %" if km12 is not None and km12.ci_low is not None else "",
                )
            )
        for measure, title in (("villalta", "Villalta"), ("civiq20", "CIVIQ-20")):
            b, f = self.value(measure, "baseline_median"), self.value(measure, "followup_median")
            w = self.stat(measure, "wilcoxon")
            cards.append(
                (
                    f"{title} median, baseline → 3 months",
                    f"{fmt_num(b)} → {fmt_num(f)}" if b is not None else NA,
                    f"Wilcoxon p {fmt_p(w.p_value)}" if w is not None and w.p_value is not None else "",
                )
            )
        body = "".join(
            f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div>'
            f'<div class="d">{_esc(d)}</div></div>'
            for k, v, d in cards
        )
        return f'<h2 id="key">1. Key results</h2><div class="cards">{body}</div>'

    def flow(self) -> str:
        stages = patient_flow(self.cohort, self.outcomes)
        fig = self.add_figure(flow_figure(stages), "patient-flow")
        rows = [[s.title, s.count, "; ".join(s.excluded) or "—"] for s in stages]
        extra = {k: v for k, v in self.cohort.flow.items() if k not in {"patients_in_data", "with_index_procedure"}}
        extra_html = ""
        if extra:
            extra_html = (
                "<details><summary>Every count reported by the cohort builder</summary>"
                + _table(["Count", "Value"], [[k.replace("_", " "), str(v)] for k, v in extra.items()])
                + "</details>"
            )
        return (
            '<h2 id="flow">2. Patient flow</h2>'
            + _figure_html(
                fig,
                "Patient flow from the records to each analysis. Patency analyses cover every patient with an "
                "index procedure; score analyses use complete baseline/3-month pairs; regressions use complete cases.",
                "Patient flow diagram",
            )
            + _table(["Stage", "Patients", "Not carried to the next stage (reason)"], rows, cls="text")
            + extra_html
        )

    def table1(self) -> str:
        p = self.patients
        n = len(p)
        if n == 0:
            return f'<h2 id="table1">3. Table 1 — baseline characteristics</h2><p class="na">{NA}: empty cohort.</p>'
        rows: list[list[str]] = [["Patients", str(n)]]
        sex = self.column("sex").astype("string")
        rows.append(["<group>Sex, n (%)", ""])
        for value, label in (("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown")):
            k = int((sex == value).fillna(False).sum())
            if k or value in ("female", "male"):
                rows.append([f"<indent>{label}", f"{k} ({fmt_pct(k, n)})"])
        missing_sex = int(sex.isna().sum())
        if missing_sex:
            rows.append(["<indent>Not recorded", f"{missing_sex} ({fmt_pct(missing_sex, n)})"])
        age = pd.to_numeric(self.column("age"), errors="coerce").dropna().astype(float)
        if age.empty:
            rows.append(["Age, years, mean ± SD (range)", NA])
        else:
            sd = age.std(ddof=1) if len(age) > 1 else float("nan")
            rows.append(
                [
                    "Age, years, mean ± SD (range)",
                    f"{fmt_num(age.mean())} ± {fmt_num(sd)} ({fmt_num(age.min())}–{fmt_num(age.max())})"
                    + (f" [n = {len(age)}]" if len(age) != n else ""),
                ]
            )
        segs = pd.to_numeric(self.column("stented_segments"), errors="coerce")
        rows.append(["<group>Stented segments, n (%)", ""])
        for k, c in sorted(Counter(int(v) for v in segs.dropna()).items()):
            rows.append([f"<indent>{k} segment{'s' if k != 1 else ''}", f"{c} ({fmt_pct(c, n)})"])
        if segs.isna().any():
            c = int(segs.isna().sum())
            rows.append(["<indent>Not recorded", f"{c} ({fmt_pct(c, n)})"])
        below = self.column("below_inguinal_ligament")
        known = below.dropna()
        k = int(known.astype(bool).sum()) if len(known) else 0
        rows.append(
            [
                "Stenting below the inguinal ligament, n (%)",
                f"{k} ({fmt_pct(k, len(known))})" + (f" [of {len(known)} with data]" if len(known) != n else ""),
            ]
        )
        for column, label in (
            ("baseline_villalta", "Baseline Villalta score, median (IQR)"),
            ("baseline_civiq20", "Baseline CIVIQ-20 raw score (20–100), median (IQR)"),
            ("baseline_civiq20_gis", "Baseline CIVIQ-20 Global Index Score (0–100), median (IQR)"),
        ):
            values = pd.to_numeric(self.column(column), errors="coerce").dropna()
            rows.append([label, _median_iqr(values) + (f" [n = {len(values)}]" if len(values) != n else "")])
        classes = self.column("baseline_villalta_class").astype("string")
        rows.append(["<group>Baseline PTS severity (Villalta class), n (%)", ""])
        for cls in VILLALTA_CLASSES:
            c = int((classes == cls).fillna(False).sum())
            rows.append([f"<indent>{cls.capitalize()}", f"{c} ({fmt_pct(c, n)})"])
        c = int(classes.isna().sum())
        if c:
            rows.append(["<indent>Not assessed", f"{c} ({fmt_pct(c, n)})"])
        ulcer = self.column("baseline_ulcer").dropna()
        if len(ulcer):
            k = int(ulcer.astype(bool).sum())
            rows.append(["Venous ulcer at baseline, n (%)", f"{k} ({fmt_pct(k, len(ulcer))})"])
        body = []
        for label, value in rows:
            if label.startswith("<group>"):
                body.append(f'<tr class="group"><td>{_esc(label[7:])}</td><td>{_esc(value)}</td></tr>')
            elif label.startswith("<indent>"):
                body.append(f'<tr><td class="indent">{_esc(label[8:])}</td><td>{_esc(value)}</td></tr>')
            else:
                body.append(f"<tr><td>{_esc(label)}</td><td>{_esc(value)}</td></tr>")
        return (
            '<h2 id="table1">3. Table 1 — baseline characteristics</h2>'
            "<table><thead><tr><th>Characteristic</th><th>Value</th></tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table>"
            '<p class="note">Percentages of all patients with an index procedure unless stated; '
            "IQR = interquartile range (25th–75th percentile).</p>"
        )

    def procedure(self) -> str:
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
        out = '<h2 id="procedure">4. Procedure outcomes and follow-up</h2>'
        out += _table(["Outcome", "Patients", "%", "95 % CI (Clopper–Pearson)"], rows)
        unknown = self.count(self.column("technical_success").isna()) if len(self.patients) else 0
        if unknown:
            out += (
                f'<p class="note">Technical outcome not recorded for {unknown} patient(s): '
                "left out of numerator and denominator.</p>"
            )
        if "imaging-follow-up" in self.by_id and self.by_id["imaging-follow-up"].ok:
            med, q1, q3, rkm = (
                self.value("imaging-follow-up", s)
                for s in ("median_months", "q1_months", "q3_months", "reverse_km_median_months")
            )
            out += _table(
                ["Imaging follow-up", "Months"],
                [
                    ["Median (IQR) time to the last patency finding", f"{fmt_num(med)} ({fmt_num(q1)}–{fmt_num(q3)})"],
                    ["Reverse Kaplan–Meier median (potential follow-up)", fmt_num(rkm)],
                ],
            )
        else:
            out += self.unavailable("imaging-follow-up")
        return out

    def patency(self) -> str:
        out = '<h2 id="patency">5. Stent patency</h2>'
        fig = self.add_figure(km_figure(self.patients), "kaplan-meier-patency")
        out += _figure_html(
            fig,
            "Kaplan–Meier estimates of primary, primary-assisted and secondary patency from the index procedure "
            "(day 0), with 95 % confidence bands; vertical ticks mark censored patients (last patency finding). "
            "Number at risk: patients whose time is at least that long.",
            "Kaplan–Meier curves of stent patency",
        )
        header = ["Definition", "Patients", "Events", "Patent at last follow-up"] + [f"{m} months" for m in KM_MONTHS]
        rows: list[list[str]] = []
        for measure, title in PATENCY_MEASURES.items():
            outcome = self.by_id.get(measure)
            if outcome is None or outcome.result is None:
                rows.append([title, NA, "", "", *["" for _ in KM_MONTHS]])
                continue
            pat, ev = self.value(measure, "patients"), self.value(measure, "events")
            last, prop = (
                self.value(measure, "patent_at_last_follow_up"),
                self.value(measure, "proportion_at_last_follow_up"),
            )
            cells = [
                title,
                fmt_num(pat),
                fmt_num(ev),
                f"{fmt_num(last)} ({fmt_percent(prop)})",
            ]
            for m in KM_MONTHS:
                km = self.stat(measure, f"km_{m}m")
                risk = self.value(measure, f"at_risk_{m}m")
                if km is None or km.value is None:
                    cells.append("beyond follow-up" if km is not None else NA)
                    continue
                ci = f"<br><small>{_esc(fmt_ci(km, 1, 100.0))}</small>" if km.ci_low is not None else ""
                at = f"<br><small>at risk {_esc(fmt_num(risk))}</small>" if risk is not None else ""
                cells.append(f"{_esc(fmt_percent(km.value))}{ci}{at}")
            rows.append([_esc(c) for c in cells[:4]] + cells[4:])
        out += _table(header, rows, raw=True, caption="Kaplan–Meier estimates (95 % CI, log-log) and number at risk")
        out += (
            '<p class="note">Primary patency is lost at the first stenosis (&gt; 50 %), occlusion or reintervention; '
            "primary-assisted patency at the first occlusion; secondary patency at the first occlusion never "
            "reopened. A technical failure is a loss of all three at day 0.</p>"
        )
        return out

    def scores(self) -> str:
        out = '<h2 id="scores">6. Villalta and CIVIQ-20 before and 3 months after stenting</h2>'
        annotations = {}
        for measure in ("villalta", "civiq20"):
            w = self.stat(measure, "wilcoxon")
            n = self.value(measure, "n_pairs")
            annotations[measure] = (
                f"n = {fmt_num(n)} pairs · Wilcoxon p {fmt_p(w.p_value)}" if w is not None else f"n = {fmt_num(n)}"
            )
        fig = self.add_figure(
            scores_figure(
                self.patients,
                [
                    ScorePanel(
                        "Villalta score (0–33)",
                        "baseline_villalta",
                        "followup_villalta",
                        annotations["villalta"],
                        "Villalta score (higher = more severe PTS)",
                    ),
                    ScorePanel(
                        "CIVIQ-20 raw score (20–100)",
                        "baseline_civiq20",
                        "followup_civiq20",
                        annotations["civiq20"],
                        "CIVIQ-20 (higher = worse quality of life)",
                    ),
                ],
            ),
            "scores-before-after",
        )
        out += _figure_html(
            fig,
            "Scores at baseline and 3 months in patients with both (lines join the two scores of one patient); "
            "boxes show median and interquartile range.",
            "Villalta and CIVIQ-20 scores before and after stenting",
        )
        rows = []
        for measure, title in (("villalta", "Villalta"), ("civiq20", "CIVIQ-20 (raw)")):
            outcome = self.by_id.get(measure)
            if outcome is None or outcome.result is None:
                rows.append([title, NA, "", "", "", "", ""])
                continue
            v = {s: self.value(measure, s) for s in (
                "n_pairs", "baseline_median", "baseline_q1", "baseline_q3", "followup_median", "followup_q1",
                "followup_q3", "gain_mean")}  # fmt: skip
            w = self.stat(measure, "wilcoxon")
            rows.append(
                [
                    title,
                    fmt_num(v["n_pairs"]),
                    f"{fmt_num(v['baseline_median'])} ({fmt_num(v['baseline_q1'])}–{fmt_num(v['baseline_q3'])})",
                    f"{fmt_num(v['followup_median'])} ({fmt_num(v['followup_q1'])}–{fmt_num(v['followup_q3'])})",
                    fmt_num(v["gain_mean"], 2),
                    fmt_num(None if w is None else w.value),
                    fmt_p(None if w is None else w.p_value),
                ]
            )
        out += _table(
            ["Score", "Pairs", "Baseline median (IQR)", "3 months median (IQR)", "Mean gain", "Wilcoxon V", "p"],
            rows,
            caption="Paired comparison (complete pairs; gain = baseline − 3 months, positive = improvement)",
        )
        out += self.class_shift()
        for measure in ("villalta", "civiq20"):
            if measure not in self.by_id or not self.by_id[measure].ok:
                out += self.unavailable(measure)
        return out

    def class_shift(self) -> str:
        base = self.column("baseline_villalta_class").astype("string")
        follow = self.column("followup_villalta_class").astype("string")
        both = base.notna() & follow.notna()
        if not bool(both.any()):
            return f'<h3>Villalta class shift</h3><p class="na">{NA}: no patient has both classes.</p>'
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
        return (
            "<h3>Villalta class shift</h3>"
            + _table(
                header,
                rows,
                caption=f"Patients with both classes: {n} (none 0–4, mild 5–9, moderate 10–14, severe ≥ 15 or ulcer)",
            )
            + f'<p class="note">{improved} of {n} patients ({fmt_pct(improved, n)}) moved to a milder class.</p>'
        )

    def regressions(self) -> str:
        out = '<h2 id="regression">7. What predicts the gain? Multiple linear regression</h2>'
        forest: dict[str, list[ForestRow]] = {}
        for measure, title in REGRESSIONS.items():
            out += f"<h3>{_esc(title)} (OLS; outcome = baseline − 3-month score)</h3>"
            outcome = self.by_id.get(measure)
            if outcome is None or outcome.result is None:
                out += self.unavailable(measure)
                continue
            coefs = [s for s in outcome.result.statistics if s.name.startswith("coef:")]
            rows = []
            frows = []
            for s in coefs:
                term = s.name.split(":", 1)[1]
                label = TERM_LABELS.get(term, term.replace("_", " "))
                rows.append([label, fmt_num(s.value, 3), fmt_ci(s, 3), fmt_p(s.p_value)])
                if term != "intercept":
                    frows.append(ForestRow(label, s.value, s.ci_low, s.ci_high))
            n, r2 = self.value(measure, "n"), self.value(measure, "r_squared")
            out += _table(
                ["Term", "β", "95 % CI", "p"],
                rows,
                caption=f"n = {fmt_num(n)} complete cases · R² = {fmt_num(r2, 3)}",
            )
            forest[f"{title} (n = {fmt_num(n)})"] = frows
        fig = self.add_figure(forest_figure(forest), "regression-forest")
        out += _figure_html(
            fig,
            "Regression coefficients with 95 % confidence intervals (intercept not shown); a coefficient whose "
            "interval does not cross the dashed line (β = 0) is significantly associated with the gain.",
            "Forest plot of the regression coefficients",
        )
        return out

    def generic(self, outcome: AnalysisOutcome) -> str:
        assert outcome.result is not None
        rows = [
            [
                s.name,
                fmt_num(s.value, 3),
                fmt_ci(s, 3),
                fmt_p(s.p_value),
                "" if s.n is None else str(s.n),
                s.unit or "",
            ]
            for s in outcome.result.statistics
        ]
        notes = "".join(f'<p class="note">{_esc(self.scrub(n))}</p>' for n in outcome.result.notes)
        return (
            f'<h3>{_esc(outcome.info.title)} <small class="note">({_esc(outcome.info.id)}, '
            f"plugin {_esc(outcome.plugin)})</small></h3>"
            f'<p class="note">{_esc(outcome.info.description)}</p>'
            + _table(["Statistic", "Value", "95 % CI", "p", "n", "Unit"], rows)
            + notes
        )

    def others(self) -> str:
        out = '<h2 id="other">8. Other analyses</h2>'
        extra = [o for o in self.outcomes if o.info.id not in SPECIAL_MEASURES and o.ok]
        out += "".join(self.generic(o) for o in extra) or '<p class="na">No other analysis was run.</p>'
        failed = [o for o in self.outcomes if not o.ok]
        if failed:
            out += "<h3>Failed analyses</h3>" + _table(
                ["Measure", "Plugin", "Error"],
                [[o.info.id, o.plugin, self.scrub(o.error or "unknown error")] for o in failed],
                cls="text",
            )
        else:
            out += '<p class="note">Every analysis completed.</p>'
        ok = [o for o in self.outcomes if o.ok and o.info.id in SPECIAL_MEASURES]
        if ok:
            out += (
                "<details><summary>All statistics of the analyses above (as in results.csv)</summary>"
                + "".join(self.generic(o) for o in ok)
                + "</details>"
            )
        return out

    def comparison(self, comparison_html: str | None) -> str:
        if comparison_html is None:
            return ""
        return f'<h2 id="comparison">9. Comparison with the published abstract</h2>{comparison_html}'

    def problems(self) -> str:
        out = '<h2 id="quality">10. Data quality: records skipped or doubtful</h2>'
        problems = self.cohort.problems
        if not problems:
            return out + "<p>No input record was skipped or doubtful.</p>"
        counts = Counter((p.resource_type, self.scrub(generic_reason(p.reason)), p.severity) for p in problems)
        rows = [
            [rt, reason, sev, str(c)] for (rt, reason, sev), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        by_type = Counter(p.resource_type for p in problems)
        out += (
            f"<p>{len(problems)} record(s) were skipped or flagged "
            f"({', '.join(f'{_esc(t)}: {c}' for t, c in sorted(by_type.items()))}). "
            "Each one is listed in <code>problems.csv</code>.</p>"
        )
        return out + _table(["Resource type", "Reason", "Severity", "Records"], rows, cls="text")

    def patient_lists(self) -> str:
        p = self.patients
        if len(p) == 0 or "patient_id" not in p:
            return ""
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
            ids = sorted(self.pid(i) for i in p.loc[mask.fillna(False).astype(bool).to_numpy(), "patient_id"])
            if ids:
                shown = ", ".join(ids[:MAX_LISTED_IDS])
                if len(ids) > MAX_LISTED_IDS:
                    shown += f" … and {len(ids) - MAX_LISTED_IDS} more (see cohort.csv)"
                rows.append([label, str(len(ids)), shown])
        if not rows:
            return ""
        what = "pseudonymised ids (salted SHA-256)" if self.hash_patient_ids else "FHIR Patient ids"
        return (
            f"<details><summary>Patient-level lists for checking the source records ({what})</summary>"
            + _table(["Reason", "Patients", "Ids"], rows, cls="text")
            + "</details>"
        )

    def provenance(self) -> str:
        ri = self.run_info
        out = '<h2 id="provenance">11. Provenance: how these numbers were produced</h2>'
        out += _table(
            ["Run", ""],
            [["Started", ri.started.isoformat(timespec="seconds")], ["Command", self.scrub(ri.command)]],
            cls="text",
        )
        params = [
            [str(k), self.scrub(json.dumps(v, default=str, sort_keys=True) if not isinstance(v, str) else v)]
            for k, v in sorted(ri.parameters.items())
        ]
        out += (
            _table(["Parameter", "Value"], params, cls="text")
            if params
            else '<p class="na">No parameters recorded.</p>'
        )
        out += _table(["Software", "Version"], sorted(ri.versions.items()), cls="text")
        if ri.inputs:
            out += _table(
                ["Input file", "SHA-256"],
                [[_esc(self.scrub(path)), f'<span class="mono">{_esc(h)}</span>'] for path, h in ri.inputs],
                cls="text",
                caption=f"Input fingerprints ({len(ri.inputs)} file(s))",
                raw=True,
            )
        else:
            out += '<p class="na">No input files recorded (e.g. data read from a FHIR server).</p>'
        return out

    def build(self, comparison_html: str | None) -> str:
        sections = [
            self.key_results(),
            self.flow(),
            self.table1(),
            self.procedure(),
            self.patency(),
            self.scores(),
            self.regressions(),
            self.others(),
            self.comparison(comparison_html),
            self.problems() + self.patient_lists(),
            self.provenance(),
        ]
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
        if comparison_html is not None:
            titles.append(("comparison", "Comparison with the abstract"))
        titles += [("quality", "Data quality"), ("provenance", "Provenance")]
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>fhir-pts outcome report</title>"
            f"<style>{_CSS}</style></head><body><main>"
            + self.header()
            + self.nav(titles)
            + "".join(sections)
            + '<footer><p class="note">fhir-pts · report generated without network access; no names or other '
            "direct identifiers are shown.</p></footer></main></body></html>\n"
        )


_QUOTED_VALUE = re.compile(r"""(?<!expected )(?:'[^']*'|"[^"]*")""")


def generic_reason(reason: str) -> str:
    """A problem reason with the offending value elided: ``'1970-13' is not a full date`` → ``'…' is not …``.

    Values quoted in reasons may be identifying (a birth date, a name in a free-text field) and make every
    reason unique; the report groups by the elided text (``problems.csv`` keeps the full one). What follows
    ``expected`` is kept: it names what the contract wants, not patient data.
    """
    return _QUOTED_VALUE.sub("'…'", reason)


def _signed(day: int) -> str:
    return str(day).replace("-", "−")


def comparison_table_html(rows: Sequence[object]) -> str:
    """The ``demo`` comparison (rows of :class:`~fhir_pts.outputs.abstract_comparison.ComparisonRow`) as HTML.

    Pass the result as ``comparison_html`` to :func:`write_report`. Figures that differ are marked in red,
    those that agree in green; the notes (e.g. the abstract's own inconsistencies) are kept.
    """
    if not rows:
        return f'<p class="na">Comparison {NA}.</p>'
    body = []
    for row in rows:
        check = str(getattr(row, "check", ""))
        cls = {"ok": "ok", "DIFFERS": "error"}.get(check, "na")
        body.append(
            "<tr>"
            + "".join(f"<td>{_esc(getattr(row, a, ''))}</td>" for a in ("figure", "abstract", "ours"))
            + f'<td class="{cls}">{_esc(check)}</td><td>{_esc(getattr(row, "note", ""))}</td></tr>'
        )
    differ = sum(1 for r in rows if getattr(r, "check", "") == "DIFFERS")
    missing = sum(1 for r in rows if getattr(r, "check", "") == "n/a")
    return (
        '<table class="text"><thead><tr><th>Figure</th><th>Abstract</th><th>This run</th><th>Check</th>'
        "<th>Note</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"
        f'<p class="note">{len(rows)} figures: {len(rows) - differ - missing} agree at the abstract\'s precision, '
        f"{differ} differ, {missing} not computed.</p>"
    )


def patient_flow(cohort: Cohort, outcomes: Sequence[AnalysisOutcome]) -> list[FlowStage]:
    """The stages of the patient-flow diagram, with the reasons patients are not carried to the next stage.

    Counts come from ``cohort.flow`` (``patients_in_data``, ``with_index_procedure``) where the cohort builder
    recorded them, otherwise from ``cohort.patients``; the regression stage uses the ``n`` statistic of the
    regression outcomes.
    """
    p = cohort.patients
    n = len(p)

    def col(name: str) -> pd.Series:
        return p[name] if name in p else pd.Series([pd.NA] * n, dtype="object")

    def has(name: str) -> pd.Series:
        return col(name).notna().to_numpy()

    w = cohort.windows
    in_data = cohort.flow.get("patients_in_data")
    with_index = cohort.flow.get("with_index_procedure", n)
    skipped = Counter(generic_reason(pr.reason) for pr in cohort.problems if pr.severity == "skipped")
    stage1_excl = []
    if in_data is not None:
        stage1_excl.append(f"No index stenting procedure: {in_data - with_index}")
    orphans = cohort.flow.get("facts_without_patient")
    if orphans:
        stage1_excl.append(f"Records referring to no known patient: {orphans}")
    if skipped:
        top = ", ".join(f"{reason} ({c})" for reason, c in skipped.most_common(3))
        more = " …" if len(skipped) > 3 else ""
        stage1_excl.append(f"Input records skipped (records, not patients): {sum(skipped.values())} — {top}{more}")
    tech = col("technical_success")
    success = int((tech == True).fillna(False).sum())  # noqa: E712
    failure = int((tech == False).fillna(False).sum())  # noqa: E712
    unknown = int(tech.isna().sum())
    bv, bc = has("baseline_villalta"), has("baseline_civiq20")
    pv = bv & has("followup_villalta")
    pc = bc & has("followup_civiq20")
    stages = [
        FlowStage("Patients in the data", NA if in_data is None else str(in_data), tuple(stage1_excl)),
        FlowStage(
            "With an index stenting procedure (all patency analyses)",
            str(with_index),
            (
                f"Technical outcome: success {success}, failure {failure}, not recorded {unknown}",
                "(all kept in the patency analyses)",
            ),
        ),
        FlowStage(
            f"With a baseline score (day {_signed(w.baseline_start)} to {_signed(w.baseline_end)})",
            f"Villalta {int(bv.sum())} · CIVIQ-20 {int(bc.sum())}",
            (f"No scorable baseline: Villalta {n - int(bv.sum())}, CIVIQ-20 {n - int(bc.sum())}",),
        ),
        FlowStage(
            f"With a 3-month score (day {w.followup_start} to {w.followup_end}; complete pairs)",
            f"Villalta {int(pv.sum())} · CIVIQ-20 {int(pc.sum())}",
            (f"No scorable 3-month score: Villalta {int(bv.sum() - pv.sum())}, CIVIQ-20 {int(bc.sum() - pc.sum())}",),
        ),
    ]
    by_id = _index(outcomes)
    reg_counts = []
    for measure, title, pairs in (
        ("villalta-gain-regression", "Villalta gain", pv),
        ("civiq20-gain-regression", "CIVIQ-20 gain", pc),
    ):
        outcome = by_id.get(measure)
        reg_n: float | None = None
        if outcome is not None and outcome.result is not None:
            try:
                reg_n = outcome.result.statistic("n").value
            except KeyError:
                reg_n = None
        reg_counts.append((title, reg_n, pairs))
    excl = []
    for title, reg_n, pairs in reg_counts:
        if reg_n is None:
            excl.append(f"{title}: regression {NA}")
            continue
        missing = []
        for column, label in (
            ("baseline_villalta", "baseline Villalta"),
            ("baseline_civiq20", "baseline CIVIQ-20"),
            ("age", "age"),
            ("stented_segments", "stented segments"),
        ):
            k = int((pairs & ~has(column)).sum())
            if k:
                missing.append(f"{label} {k}")
        dropped = int(pairs.sum()) - int(reg_n)
        excl.append(f"{title}: {dropped} missing a covariate" + (f" ({', '.join(missing)})" if missing else ""))
    stages.append(
        FlowStage(
            "In the regression (complete cases)",
            " · ".join(f"{t} {NA if r is None else fmt_num(r)}" for t, r, _ in reg_counts),
            tuple(excl),
        )
    )
    return stages


def write_report(
    out_dir: Path,
    cohort: Cohort,
    outcomes: list[AnalysisOutcome],
    run_info: RunInfo,
    *,
    comparison_html: str | None = None,
    hash_patient_ids: bool = False,
) -> Path:
    """Write ``out_dir/report.html`` (one self-contained file) and ``out_dir/figures/*.svg|png``; return its path.

    ``comparison_html`` is an HTML fragment (trusted, from the caller, e.g. the ``demo`` comparison with the
    abstract) placed in its own section. With ``hash_patient_ids`` every patient id in the report is replaced
    by a salted short SHA-256 pseudonym (salt derived from the input fingerprints, so pseudonyms are stable
    for the same data). Every file is written atomically.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = _Report(cohort, list(outcomes), run_info, hash_patient_ids, out_dir / "figures")
    text = report.build(comparison_html)
    path = out_dir / "report.html"
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
