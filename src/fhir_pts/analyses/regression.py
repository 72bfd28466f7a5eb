"""Built-in analyses ``<id>-gain-regression`` for every instrument (``villalta-gain-regression``,
``civiq20-gain-regression`` of contract §4, a plugin's ``vcss-gain-regression`` ...).

A plugin registered by import as ``regression`` (:data:`fhir_pts.plugin_manager.BUILTIN_PLUGINS`); one analysis
per instrument declared through the ``fhir_pts_instruments`` hook.

OLS with intercept of the score gain (baseline − 3 months) on the instrument's regression terms (for Villalta and
CIVIQ-20 ``baseline_villalta``, ``baseline_civiq20``, ``age`` and ``stented_segments``; by default
``baseline_<id>``, ``age``, ``stented_segments``), complete cases only, as R ``lm`` + ``confint``:
``n``, ``r_squared``, ``coef:<term>`` (value = estimate, 95 % CI, two-sided t-test p) for ``intercept`` and
each term; extra ``excluded`` (patients left out for a missing value).

Parameters (``--param`` / ``run_analyses(parameters=...)``):

- ``outcome``: the response column (default ``<id>_gain``: ``villalta_gain`` / ``civiq20_gain``);
- ``terms``: the predictor columns, in model order (a list, or one comma-separated string);
- ``formula``: a patsy formula (``"villalta_gain ~ age + C(sex)"``) used instead of ``outcome`` / ``terms``
  when set; its term names are patsy's (``coef:C(sex)[T.male]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fhir_pts.analyses._common import count
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.hookspecs import hookimpl
from fhir_pts.instruments.builtin import CIVIQ20, VILLALTA
from fhir_pts.instruments.model import Instrument

if TYPE_CHECKING:  # numpy, pandas and the statistics libraries are imported where used (listing stays fast)
    from fhir_pts.analyses import aggregates as agg
    from fhir_pts.analyses import stats
    from fhir_pts.cohort.model import Cohort

DEFAULT_TERMS: tuple[str, ...] = VILLALTA.terms
_TERM_LABELS = {"age": "age", "stented_segments": "number of stented segments"}


def _term_label(term: str, instruments: Sequence[Instrument]) -> str:
    for instrument in instruments:
        if term == f"baseline_{instrument.id}":
            return f"baseline {instrument.title}"
    return _TERM_LABELS.get(term, term)


def regression_info(instrument: Instrument, instruments: Sequence[Instrument] = ()) -> AnalysisInfo:
    """The gain regression ``<id>-gain-regression`` of an instrument (``instruments``: to name the terms)."""
    known = [*instruments, instrument]
    labels = [_term_label(t, known) for t in instrument.terms]
    on = f"{', '.join(labels[:-1])} and {labels[-1]}" if len(labels) > 1 else "".join(labels)
    outcome = instrument.gain_column
    return AnalysisInfo(
        id=instrument.measure_ids[1],
        title=f"Regression of the {instrument.title} gain",
        description=f"OLS with intercept of {outcome} (baseline - 3 months) on {on}; complete cases; coefficients "
        "with 95 % CI and p-values.",
        scoring="cohort",
        default_parameters={"outcome": outcome, "terms": instrument.terms, "formula": None},
    )


VILLALTA_GAIN_REGRESSION = regression_info(VILLALTA, (VILLALTA, CIVIQ20))
CIVIQ20_GAIN_REGRESSION = regression_info(CIVIQ20, (VILLALTA, CIVIQ20))
#: The contract's two gain regressions (those of the built-in instruments).
ANALYSES: tuple[AnalysisInfo, ...] = (VILLALTA_GAIN_REGRESSION, CIVIQ20_GAIN_REGRESSION)


def fit_statistics(fit: stats.OlsResult) -> list[Statistic]:
    """``n``, ``r_squared`` and ``coef:<term>`` (estimate, 95 % CI, p) of a fit — shared by the run and pooling."""
    n = fit.n
    statistics = [count("n", n, n=n), Statistic("r_squared", fit.r_squared, n=n)]
    statistics.extend(
        Statistic(f"coef:{name}", term.estimate, term.ci_low, term.ci_high, term.p_value, n=n)
        for name, term in fit.terms.items()
    )
    return statistics


def gain_regression(
    cohort: Cohort, outcome: str, terms: Sequence[str] = DEFAULT_TERMS, formula: str | None = None
) -> AnalysisResult:
    """OLS of ``outcome`` on ``terms`` (or of ``formula``) over the complete cases of the cohort.

    Returns every ``coef:<term>`` row even when the model cannot be fitted: with no residual degrees of
    freedom (complete cases ≤ coefficients) the estimates are R's exact fit and the CI and p are None; with no
    complete case everything is None.
    """
    from fhir_pts.analyses import stats

    frame = cohort.patients
    total = len(frame)
    if formula:
        fit = stats.ols_formula(frame, formula)
        design = stats.ols_formula_design(frame, formula)
    else:
        if isinstance(terms, str):  # "age, stented_segments" (e.g. from the command line)
            terms = [t.strip() for t in terms.split(",") if t.strip()]
        fit = stats.ols(frame, outcome, list(terms))
        design = stats.ols_design(frame, outcome, list(terms))
    n = fit.n
    statistics = fit_statistics(fit)
    statistics.append(count("excluded", total - n, n=total))
    notes = [f"model: {fit.formula}"]
    if total - n:
        notes.append(f"{total - n} of {total} patients excluded: a missing value in the model's variables")
    if n and all(term.p_value is None for term in fit.terms.values()):
        notes.append(
            f"model not estimable (no residual degrees of freedom: no CI or p-value): {n} complete case(s) for "
            f"{len(fit.terms)} coefficient(s)"
        )
    populations = {
        "initial-population": total,
        "measure-population": total,
        "measure-population-exclusion": total - n,
    }
    from fhir_pts.analyses import aggregates as agg

    aggregates: list[agg.Aggregate] = []
    if not isinstance(design, stats.OlsResult):  # a model patsy cannot code has nothing to pool
        y, x, names, model = design
        aggregates.append(agg.cross_products("model", y, x, names, model))
    aggregates.append(agg.count("excluded", total - n, n=total))
    return AnalysisResult(statistics=statistics, populations=populations, notes=notes, aggregates=aggregates)


@hookimpl
def fhir_pts_describe_analyses(instruments: Sequence[Instrument]) -> list[AnalysisInfo]:
    """One gain regression per instrument."""
    return [regression_info(instrument, instruments) for instrument in instruments]


@hookimpl
def fhir_pts_run_analysis(
    analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
) -> AnalysisResult | None:
    """Run the gain regression of one of the cohort's instruments with its parameters; None for any other."""
    if analysis.id not in {i.measure_ids[1] for i in cohort.instruments}:
        return None
    params = {**analysis.default_parameters, **parameters}
    return gain_regression(cohort, params["outcome"], params["terms"], params["formula"])
