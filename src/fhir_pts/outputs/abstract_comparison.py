"""Our numbers beside the published abstract's (``fhir-pts demo``).

Each figure of the abstract (``seed-abstract.txt``) is compared at the abstract's own precision: ours is
rounded half-up to the number of decimals the abstract prints and must then be equal; ``P<0.0001`` needs
ours < 0.0001. For the regression the abstract's CIs are partly inconsistent, so the sign and the
significance pattern (p < 0.05 or not, and the abstract's threshold where it gives one) are checked, and the
agreement of the 95 % CI is a separate row.

The abstract is reported as printed, never bent to agree with itself. Two of its figures are inconsistent:

- primary patency "29/42 (66.7 %)": 29/42 = 69.0 % (28/42 = 66.7 %);
- Villalta-gain regression, baseline Villalta "95 % CI -7.80-3.79; P<0.0001": a CI that includes 0 cannot go
  with P < 0.0001 (and its sign is undetermined).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from fhir_pts.analyses.api import AnalysisOutcome, Statistic
from fhir_pts.atomic import atomic_write_bytes

#: Columns of ``abstract-comparison.csv``.
COMPARISON_COLUMNS: tuple[str, ...] = ("figure", "measure", "statistic", "abstract", "ours", "check", "note")

INCONSISTENT_PRIMARY = "abstract inconsistent: 29/42 is 69.0 %, not 66.7 % (66.7 % would be 28/42)"
INCONSISTENT_VILLALTA_CI = (
    "abstract inconsistent: its CI -7.80 to 3.79 includes 0, which contradicts P<0.0001; sign undetermined"
)


@dataclass(frozen=True)
class ComparisonRow:
    """One figure of the abstract beside ours.

    ``agrees``: True when ours matches at the abstract's precision (or the pattern checked), False when it
    differs, None when it cannot be compared (ours missing). ``note`` explains the check or a known
    inconsistency of the abstract.
    """

    figure: str
    measure: str
    statistic: str
    abstract: str
    ours: str
    agrees: bool | None
    note: str = ""

    @property
    def check(self) -> str:
        """``ok``, ``DIFFERS`` or ``n/a``."""
        return "n/a" if self.agrees is None else ("ok" if self.agrees else "DIFFERS")


# ------------------------------------------------------------------------------------------------ helpers


def round_half_up(value: float, decimals: int) -> Decimal:
    """``value`` rounded half away from zero to ``decimals`` places (as papers round), exactly in decimal."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _fmt(value: float | None, decimals: int) -> str:
    return "—" if value is None else str(round_half_up(value, decimals))


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "P<0.0001" if p < 0.0001 else f"P={p:.4g}"


class _Lookup:
    def __init__(self, outcomes: Iterable[AnalysisOutcome]) -> None:
        self._stats: dict[tuple[str, str], Statistic] = {}
        for o in outcomes:
            if o.result is not None:
                for s in o.result.statistics:
                    self._stats[(o.info.id, s.name)] = s

    def get(self, measure: str, statistic: str) -> Statistic | None:
        return self._stats.get((measure, statistic))

    def value(self, measure: str, statistic: str) -> float | None:
        s = self.get(measure, statistic)
        return None if s is None else s.value


def _same(ours: float | None, abstract: str) -> bool | None:
    """Ours rounded to the decimals of ``abstract`` (e.g. ``"47.3"``) equals it; None if ours is missing."""
    if ours is None:
        return None
    decimals = len(abstract.split(".")[1]) if "." in abstract else 0
    return round_half_up(ours, decimals) == Decimal(abstract)


def _all(*checks: bool | None) -> bool | None:
    if any(c is None for c in checks):
        return None
    return all(checks)


def _number_row(
    lookup: _Lookup,
    figure: str,
    measure: str,
    statistic: str,
    abstract: str,
    *,
    scale: float = 1.0,
    note: str = "",
) -> ComparisonRow:
    ours = lookup.value(measure, statistic)
    ours_scaled = None if ours is None else ours * scale
    decimals = len(abstract.split(".")[1]) if "." in abstract else 0
    return ComparisonRow(
        figure, measure, statistic, abstract, _fmt(ours_scaled, decimals), _same(ours_scaled, abstract), note
    )


def _iqr_row(lookup: _Lookup, figure: str, measure: str, stats: tuple[str, str, str], abstract: str) -> ComparisonRow:
    """``abstract`` is ``"median (q1-q3)"``; every part compared at its own precision."""
    median_text, rest = abstract.split(" (")
    q1_text, q3_text = rest.rstrip(")").split("–")
    values = [lookup.value(measure, s) for s in stats]
    parts = [median_text, q1_text, q3_text]
    checks = [_same(v, t) for v, t in zip(values, parts, strict=True)]
    decs = [len(t.split(".")[1]) if "." in t else 0 for t in parts]
    ours = f"{_fmt(values[0], decs[0])} ({_fmt(values[1], decs[1])}–{_fmt(values[2], decs[2])})"
    return ComparisonRow(figure, measure, "/".join(stats), abstract, ours, _all(*checks))


def _count_row(
    lookup: _Lookup, figure: str, measure: str, num: str, den: str, abstract: str, note: str = ""
) -> ComparisonRow:
    n_text, d_text = abstract.split("/")
    numerator, denominator = lookup.value(measure, num), lookup.value(measure, den)
    ours = f"{_fmt(numerator, 0)}/{_fmt(denominator, 0)}"
    return ComparisonRow(
        figure,
        measure,
        f"{num}/{den}",
        abstract,
        ours,
        _all(_same(numerator, n_text), _same(denominator, d_text)),
        note,
    )


def _p_below_row(lookup: _Lookup, figure: str, measure: str, statistic: str) -> ComparisonRow:
    s = lookup.get(measure, statistic)
    p = None if s is None else s.p_value
    return ComparisonRow(figure, measure, statistic, "P<0.0001", _fmt_p(p), None if p is None else p < 0.0001)


@dataclass(frozen=True)
class _Coef:
    figure: str
    measure: str
    term: str
    ci: tuple[str, str] | None  # as printed
    p: str  # "<0.0001" or "=0.002" or ">=0.05" (not significant)
    note: str = ""


def _sign_of_ci(low: float, high: float) -> int:
    return 1 if low > 0 else (-1 if high < 0 else 0)


def _coef_rows(lookup: _Lookup, spec: _Coef) -> list[ComparisonRow]:
    s = lookup.get(spec.measure, f"coef:{spec.term}")
    estimate = None if s is None else s.value
    p = None if s is None else s.p_value
    statistic = f"coef:{spec.term}"
    # sign and significance
    if spec.p.startswith("<"):
        threshold = float(spec.p[1:])
        abstract_p = f"P{spec.p}"
        p_ok = None if p is None else p < threshold
    elif spec.p.startswith("="):
        abstract_p = f"P{spec.p}"
        p_ok = None if p is None else (p < 0.05) == (float(spec.p[1:]) < 0.05)
    else:
        abstract_p = "not significant (P≥0.05)"
        p_ok = None if p is None else p >= 0.05
    notes = [spec.note] if spec.note else []
    sign_ok: bool | None = True
    abstract_sign = ""
    if spec.ci is not None:
        sign = _sign_of_ci(float(spec.ci[0]), float(spec.ci[1]))
        abstract_sign = {1: "positive, ", -1: "negative, ", 0: "sign undetermined, "}[sign]
        if sign != 0 and estimate is not None:
            sign_ok = (estimate > 0) == (sign > 0)
        elif estimate is None:
            sign_ok = None
    if spec.p.startswith("=") and p is not None:
        exact = _same(p, spec.p[1:])
        notes.append(f"P equal at the abstract's precision: {'yes' if exact else 'no'}")
    ours_sign = "" if estimate is None else ("positive, " if estimate > 0 else "negative, ")
    rows = [
        ComparisonRow(
            f"{spec.figure}: sign and significance",
            spec.measure,
            statistic,
            f"{abstract_sign}{abstract_p}",
            f"{ours_sign}{_fmt_p(p)}" if s is not None else "—",
            _all(sign_ok, p_ok),
            "; ".join(notes),
        )
    ]
    if spec.ci is not None:
        lo, hi = (None, None) if s is None else (s.ci_low, s.ci_high)
        d = len(spec.ci[0].split(".")[1]) if "." in spec.ci[0] else 0
        rows.append(
            ComparisonRow(
                f"{spec.figure}: 95 % CI",
                spec.measure,
                statistic,
                f"{spec.ci[0]} to {spec.ci[1]}",
                f"{_fmt(lo, d)} to {_fmt(hi, d)}",
                _all(_same(lo, spec.ci[0]), _same(hi, spec.ci[1])),
                spec.note,
            )
        )
    return rows


_VG = "villalta-gain-regression"
_CG = "civiq20-gain-regression"
REGRESSION_FIGURES: tuple[_Coef, ...] = (
    _Coef("Villalta gain ~ baseline Villalta", _VG, "baseline_villalta", ("-7.80", "3.79"), "<0.0001",
          INCONSISTENT_VILLALTA_CI),
    _Coef("Villalta gain ~ baseline CIVIQ-20", _VG, "baseline_civiq20", ("0.07", "0.20"), "<0.0001"),
    _Coef("Villalta gain ~ age", _VG, "age", ("0.04", "0.19"), "=0.002"),
    _Coef("Villalta gain ~ stenting expanse", _VG, "stented_segments", ("0.97", "5.65"), "=0.006",
          "stenting expanse = number of stented segments (our definition, domain.md)"),
    _Coef("CIVIQ-20 gain ~ baseline Villalta", _CG, "baseline_villalta", ("0.89", "2.23"), "<0.0001"),
    _Coef("CIVIQ-20 gain ~ baseline CIVIQ-20", _CG, "baseline_civiq20", None, ">=0.05",
          "abstract: baseline Villalta is the single independent variable"),
    _Coef("CIVIQ-20 gain ~ age", _CG, "age", None, ">=0.05",
          "abstract: baseline Villalta is the single independent variable"),
    _Coef("CIVIQ-20 gain ~ stenting expanse", _CG, "stented_segments", None, ">=0.05",
          "abstract: baseline Villalta is the single independent variable"),
)  # fmt: skip


def comparison_rows(outcomes: Sequence[AnalysisOutcome]) -> list[ComparisonRow]:
    """Every figure of the abstract beside ours, in the abstract's order."""
    lk = _Lookup(outcomes)
    rows: list[ComparisonRow] = [
        _number_row(lk, "Patients", "cohort", "patients", "42"),
        _number_row(lk, "Women", "cohort", "female", "27"),
        _number_row(lk, "Men", "cohort", "male", "15"),
        _number_row(lk, "Age, mean (years)", "cohort", "age_mean", "47.3"),
        _number_row(lk, "Age, SD (years)", "cohort", "age_sd", "17"),
        _number_row(lk, "Age, minimum (years)", "cohort", "age_min", "22"),
        _number_row(lk, "Age, maximum (years)", "cohort", "age_max", "86"),
        _count_row(lk, "Technical success", "technical-success", "numerator", "denominator", "41/42"),
        _number_row(lk, "Technical success (%)", "technical-success", "proportion", "97.6", scale=100.0),
        _number_row(lk, "Major complications", "major-complications", "numerator", "0", note="abstract: none"),
        _iqr_row(
            lk,
            "Imaging follow-up, median (IQR) months",
            "imaging-follow-up",
            ("median_months", "q1_months", "q3_months"),
            "18.1 (9.7–34.4)",
        ),
    ]
    for measure, title, counts, percent, note in (
        ("primary-patency", "Primary patency", "29/42", "66.7", INCONSISTENT_PRIMARY),
        ("primary-assisted-patency", "Primary-assisted patency", "33/42", "78.6", ""),
        ("secondary-patency", "Secondary patency", "37/42", "88.1", ""),
    ):
        rows.append(
            _count_row(lk, f"{title} at last follow-up", measure, "patent_at_last_follow_up", "patients", counts, note)
        )
        rows.append(
            _number_row(
                lk, f"{title} at last follow-up (%)", measure, "proportion_at_last_follow_up", percent,
                scale=100.0, note=note,
            )
        )  # fmt: skip
    for measure, title, baseline, followup in (
        ("villalta", "Villalta", "14 (10–19)", "5 (2–9)"),
        ("civiq20", "CIVIQ-20", "57 (39–72)", "30 (24–50)"),
    ):
        rows.append(
            _iqr_row(lk, f"{title} baseline, median (IQR)", measure, ("baseline_median", "baseline_q1", "baseline_q3"),
                     baseline)
        )  # fmt: skip
        rows.append(
            _iqr_row(lk, f"{title} 3 months, median (IQR)", measure, ("followup_median", "followup_q1", "followup_q3"),
                     followup)
        )  # fmt: skip
        rows.append(_p_below_row(lk, f"{title} baseline vs 3 months, Wilcoxon", measure, "wilcoxon"))
    for spec in REGRESSION_FIGURES:
        rows.extend(_coef_rows(lk, spec))
    return rows


def format_comparison(rows: Sequence[ComparisonRow]) -> str:
    """A plain-text table (aligned columns) of the comparison, with a count of the figures that differ."""
    header = ("Figure", "Abstract", "Ours", "Check", "Note")
    cells = [header, *((r.figure, r.abstract, r.ours, r.check, r.note) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for i, c in enumerate(cells):
        line = "  ".join(c[j].ljust(widths[j]) for j in range(4))
        line = f"{line}  {c[4]}".rstrip()
        lines.append(line)
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    differ = sum(1 for r in rows if r.agrees is False)
    missing = sum(1 for r in rows if r.agrees is None)
    lines.append("")
    lines.append(
        f"{len(rows)} figures: {len(rows) - differ - missing} agree at the abstract's precision, {differ} differ, "
        f"{missing} not computed."
    )
    return "\n".join(lines)


def comparison_csv_bytes(rows: Iterable[ComparisonRow]) -> bytes:
    """``abstract-comparison.csv`` as bytes (columns :data:`COMPARISON_COLUMNS`)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COMPARISON_COLUMNS)
    getters: list[Callable[[ComparisonRow], str]] = [
        lambda r: r.figure,
        lambda r: r.measure,
        lambda r: r.statistic,
        lambda r: r.abstract,
        lambda r: r.ours,
        lambda r: r.check,
        lambda r: r.note,
    ]
    writer.writerows([g(r) for g in getters] for r in rows)
    return buffer.getvalue().encode("utf-8")


def write_comparison_csv(path: Path, rows: Iterable[ComparisonRow]) -> Path:
    """Write ``abstract-comparison.csv`` atomically."""
    return atomic_write_bytes(Path(path), comparison_csv_bytes(rows))
