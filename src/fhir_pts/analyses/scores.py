"""Built-in analyses ``<id>`` for every instrument (``villalta``, ``civiq20``, a plugin's ``vcss`` ...): scores at
baseline and 3 months (contract §2 and §4).

A plugin registered by import as ``scores`` (:data:`fhir_pts.plugin_manager.BUILTIN_PLUGINS`); one analysis
per instrument declared through the ``fhir_pts_instruments`` hook (:mod:`fhir_pts.instruments`).

Complete pairs only (both the baseline and the 3-month score known): ``n_pairs``; ``baseline_median`` /
``_q1`` / ``_q3`` and ``followup_median`` / ``_q1`` / ``_q3`` (R type 7); ``gain_mean`` (baseline − 3 months,
positive = improvement); ``wilcoxon`` (value = R's V, p_value as R ``wilcox.test(paired = TRUE)``).
Extra statistics: ``excluded`` (patients without a complete pair), ``wilcoxon_n_nonzero`` and, for an instrument
with classes (Villalta), the class distribution among the pairs ``baseline_class_none`` …
``followup_class_severe``. CIVIQ-20 uses the raw sum (20–100).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fhir_pts.analyses._common import as_float, column, count
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.hookspecs import hookimpl
from fhir_pts.instruments.builtin import CIVIQ20 as CIVIQ20_INSTRUMENT
from fhir_pts.instruments.builtin import VILLALTA as VILLALTA_INSTRUMENT
from fhir_pts.instruments.model import Instrument

if TYPE_CHECKING:  # numpy, pandas and the statistics libraries are imported where used (listing stays fast)
    from fhir_pts.analyses import aggregates as agg
    from fhir_pts.cohort.model import Cohort

VILLALTA_CLASSES: tuple[str, ...] = VILLALTA_INSTRUMENT.classes


def paired_info(instrument: Instrument) -> AnalysisInfo:
    """The paired before/after measure ``<id>`` of an instrument."""
    classes = f"; {instrument.title} classes at both times" if instrument.classes else ""
    return AnalysisInfo(
        id=instrument.id,
        title=f"{instrument.title} score, baseline and 3 months",
        description=f"{instrument.title} {instrument.score_label} at baseline and 3 months on complete pairs: "
        f"medians (IQR), mean gain and the paired Wilcoxon signed-rank test{classes}.",
        scoring="continuous-variable",
        improvement_notation=instrument.improvement_notation,
    )


VILLALTA = paired_info(VILLALTA_INSTRUMENT)
CIVIQ20 = paired_info(CIVIQ20_INSTRUMENT)
#: The contract's two before/after measures (those of the built-in instruments).
ANALYSES: tuple[AnalysisInfo, ...] = (VILLALTA, CIVIQ20)


def paired_scores(
    cohort: Cohort, stem: str, *, with_classes: bool = False, classes: Sequence[str] = ()
) -> AnalysisResult:
    """Baseline vs 3-month scores of one instrument (``stem`` = its id: ``villalta``, ``civiq20``, ``vcss``),
    complete pairs; with ``with_classes``, the distribution of ``classes`` (default Villalta's) at both times."""
    import numpy as np

    from fhir_pts.analyses import stats

    frame = cohort.patients
    total = len(frame)
    baseline = as_float(column(frame, f"baseline_{stem}"))
    followup = as_float(column(frame, f"followup_{stem}"))
    has_b, has_f = ~np.isnan(baseline), ~np.isnan(followup)
    pair = has_b & has_f
    n_pairs = int(pair.sum())
    b, f = baseline[pair], followup[pair]
    bq1, bmed, bq3 = stats.quartiles(b)
    fq1, fmed, fq3 = stats.quartiles(f)
    test = stats.wilcoxon_signed_rank(b, f)
    statistics = [
        count("n_pairs", n_pairs, n=n_pairs),
        Statistic("baseline_median", bmed, n=n_pairs, unit="{score}"),
        Statistic("baseline_q1", bq1, n=n_pairs, unit="{score}"),
        Statistic("baseline_q3", bq3, n=n_pairs, unit="{score}"),
        Statistic("followup_median", fmed, n=n_pairs, unit="{score}"),
        Statistic("followup_q1", fq1, n=n_pairs, unit="{score}"),
        Statistic("followup_q3", fq3, n=n_pairs, unit="{score}"),
        Statistic("gain_mean", float(np.mean(b - f)) if n_pairs else None, n=n_pairs, unit="{score}"),
        Statistic("wilcoxon", test.v, p_value=test.p_value, n=n_pairs),
        count("wilcoxon_n_nonzero", test.n_nonzero, n=n_pairs),
        count("excluded", total - n_pairs, n=total),
    ]

    from fhir_pts.analyses import aggregates as agg

    def quartile_names(when: str) -> dict[str, str]:
        return {"median": f"{when}_median", "q1": f"{when}_q1", "q3": f"{when}_q3"}

    aggregates: list[agg.Aggregate] = [
        agg.count("n_pairs", n_pairs, n=n_pairs),
        agg.distribution("baseline", b, unit="{score}", yields=quartile_names("baseline")),
        agg.distribution("followup", f, unit="{score}", yields=quartile_names("followup")),
        agg.moments("gain", b - f, unit="{score}", yields={"mean": "gain_mean"}),
        agg.signed_rank("wilcoxon", b, f, yields={"v": "wilcoxon", "nonzero": "wilcoxon_n_nonzero"}),
        agg.distribution("differences", b - f, unit="{score}"),
        agg.count("excluded", total - n_pairs, n=total),
    ]
    if with_classes:
        names = tuple(classes) or VILLALTA_CLASSES
        for when in ("baseline", "followup"):
            found = column(frame, f"{when}_{stem}_class").astype("string")[pair]
            class_counts = [count(f"{when}_class_{c}", int((found == c).fillna(False).sum()), n=n_pairs) for c in names]
            statistics.extend(class_counts)
            aggregates.extend(agg.count(s.name, int(s.value or 0), n=n_pairs) for s in class_counts)
    notes: list[str] = []
    if total - n_pairs:
        notes.append(
            f"{total - n_pairs} of {total} patients excluded (no complete pair): "
            f"{int((has_b & ~has_f).sum())} baseline only, {int((~has_b & has_f).sum())} 3-month only, "
            f"{int((~has_b & ~has_f).sum())} neither"
        )
    if n_pairs:
        notes.append(f"Wilcoxon signed-rank: {test.method}; {n_pairs - test.n_nonzero} zero difference(s) dropped")
    populations = {
        "initial-population": total,
        "measure-population": total,
        "measure-population-exclusion": total - n_pairs,
        "measure-observation": n_pairs,
    }
    return AnalysisResult(
        statistics=statistics, populations=populations, score="followup_median", notes=notes, aggregates=aggregates
    )


@hookimpl
def fhir_pts_describe_analyses(instruments: Sequence[Instrument]) -> list[AnalysisInfo]:
    """One before/after measure per instrument (Villalta, CIVIQ-20, then the plugins')."""
    return [paired_info(instrument) for instrument in instruments]


@hookimpl
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    """Run the before/after measure of one of the cohort's instruments; None for any other analysis."""
    instrument = next((i for i in cohort.instruments if paired_info(i) == analysis), None)
    if instrument is None:
        return None
    return paired_scores(cohort, instrument.id, with_classes=bool(instrument.classes), classes=instrument.classes)
