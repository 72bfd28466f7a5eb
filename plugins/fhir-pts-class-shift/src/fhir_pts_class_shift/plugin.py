"""The ``villalta-class-shift`` analysis: how patients move between Villalta classes from baseline to 3 months.

It uses only the public plugin API of fhir-pts (``fhir_pts.hookimpl``, :mod:`fhir_pts.analyses.api`,
:func:`fhir_pts.analyses.stats.clopper_pearson`) and two columns of ``cohort.patients`` the cohort builder
already derives: ``baseline_villalta_class`` and ``followup_villalta_class`` (``none`` < ``mild`` <
``moderate`` < ``severe``; contract §2). No new input data is needed.

Statistics (rows of ``results.csv``, measure ``villalta-class-shift``):

- ``n_pairs``: patients with both classes (the denominator of everything below);
- ``improved`` / ``unchanged`` / ``worsened``: the 3-month class is lower / the same / higher;
- ``proportion_improved``: ``improved / n_pairs`` with its 95 % Clopper–Pearson interval (the measure score);
- ``shift_<baseline>_to_<followup>``: the 16 cells of the shift table (e.g. ``shift_severe_to_mild``);
- ``unpaired``: patients left out because a class is missing (or not one of the four).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fhir_pts import hookimpl
from fhir_pts.plugin import AnalysisInfo, AnalysisResult, Statistic

if TYPE_CHECKING:  # pandas and the statistics are imported where used: `fhir-pts analyses` only lists plugins
    import pandas as pd

    from fhir_pts.cohort.model import Cohort

#: Villalta classes, from best to worst (contract §2).
CLASSES: tuple[str, ...] = ("none", "mild", "moderate", "severe")

CLASS_SHIFT = AnalysisInfo(
    id="villalta-class-shift",
    title="Villalta class shift, baseline to 3 months",
    description="Shift table of the Villalta class (none, mild, moderate, severe) at baseline against 3 months; "
    "patients improved (lower class), unchanged and worsened, and the proportion improved with its 95 % "
    "Clopper-Pearson CI, among patients with both classes.",
    scoring="proportion",
    improvement_notation="increase",
    version="0.1.0",
)


def _classes(frame: pd.DataFrame, column: str) -> pd.Series:
    import pandas as pd

    if column not in frame.columns:
        return pd.Series([pd.NA] * len(frame), index=frame.index, dtype="string")
    values = frame[column].astype("string").str.strip().str.lower()
    return values.where(values.isin(CLASSES))


def class_shift(cohort: Cohort) -> AnalysisResult:
    """The Villalta class shift table of a cohort and the proportion of patients improved.

    Parameters
    ----------
    cohort: a fhir-pts cohort; ``cohort.patients`` needs ``baseline_villalta_class`` and
        ``followup_villalta_class`` (a missing column counts as every value missing).

    Returns
    -------
    An :class:`~fhir_pts.analyses.api.AnalysisResult` with the statistics listed in the module docstring,
    populations ``initial-population`` (every patient), ``denominator`` (every patient),
    ``denominator-exclusion`` (unpaired) and ``numerator`` (improved), and ``proportion_improved`` as score.

    Examples
    --------
    Two patients going severe -> mild and mild -> mild: ``improved`` 1, ``unchanged`` 1,
    ``proportion_improved`` 0.5 with CI (0.0126, 0.9874).
    """
    frame = cohort.patients
    total = len(frame)
    baseline = _classes(frame, "baseline_villalta_class")
    followup = _classes(frame, "followup_villalta_class")
    paired = (baseline.notna() & followup.notna()).to_numpy(dtype=bool)
    rank = {name: i for i, name in enumerate(CLASSES)}
    pairs = list(zip(baseline[paired].tolist(), followup[paired].tolist(), strict=True))
    n_pairs = len(pairs)
    improved = sum(1 for b, f in pairs if rank[f] < rank[b])
    worsened = sum(1 for b, f in pairs if rank[f] > rank[b])
    unchanged = n_pairs - improved - worsened
    from fhir_pts.analyses.stats import clopper_pearson

    low, high = clopper_pearson(improved, n_pairs)
    statistics = [
        Statistic("n_pairs", float(n_pairs), n=n_pairs),
        Statistic("improved", float(improved), n=n_pairs),
        Statistic("unchanged", float(unchanged), n=n_pairs),
        Statistic("worsened", float(worsened), n=n_pairs),
        Statistic(
            "proportion_improved",
            improved / n_pairs if n_pairs else None,
            ci_low=low,
            ci_high=high,
            n=n_pairs,
            unit="1",
        ),
    ]
    for b in CLASSES:
        for f in CLASSES:
            cell = sum(1 for pair in pairs if pair == (b, f))
            statistics.append(Statistic(f"shift_{b}_to_{f}", float(cell), n=n_pairs))
    statistics.append(Statistic("unpaired", float(total - n_pairs), n=total))
    notes = []
    if total - n_pairs:
        notes.append(
            f"{total - n_pairs} of {total} patients excluded: baseline or 3-month Villalta class missing"
        )
    return AnalysisResult(
        statistics=statistics,
        populations={
            "initial-population": total,
            "denominator": total,
            "denominator-exclusion": total - n_pairs,
            "numerator": improved,
        },
        score="proportion_improved",
        notes=notes,
    )


@hookimpl
def fhir_pts_describe_analyses() -> list[AnalysisInfo]:
    """The one analysis of this plugin."""
    return [CLASS_SHIFT]


@hookimpl
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    """Run ``villalta-class-shift``; ``None`` for any other analysis."""
    if analysis.id != CLASS_SHIFT.id:
        return None
    return class_shift(cohort)
