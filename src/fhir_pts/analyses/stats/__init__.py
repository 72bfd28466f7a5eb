"""Statistics used by the analyses, each reproducing one R function exactly.

Every function here is pure (numbers in, numbers out) and returns ``None`` for "cannot be computed" instead of
raising or returning NaN. The reference for every figure is R (``stats`` and ``survival``); which R call each
function reproduces, and how the edge cases are handled, is documented in ``docs/statistics.md`` and checked by
``tests/analyses/test_stats.py`` against hand-computed values and a committed R fixture.

The computations themselves come from lifelines (Kaplan–Meier), statsmodels (Clopper–Pearson, OLS) and scipy
(exact signed-rank distribution); this module adds what those libraries do differently from R: R's edge-case
conventions for the log-log confidence interval, R's survival-quantile (median) rule, and R's choice between
the exact and the continuity-corrected normal Wilcoxon test.

The vocabulary is lifelines' (``KaplanMeierFitter.fit(durations, event_observed, timeline, alpha)``): survival
functions take ``durations`` (time from the time origin to the event or censoring) and ``event_observed`` (True =
event, False = right-censored), a fit exposes its ``timeline``, and every interval is a ``1 - alpha`` one
(``alpha=0.05``: 95 %, computed as R does from ``conf.level = 1 - alpha``).

Units: survival times are whatever the caller passes (the analyses pass months from day 0 = the index
procedure, 1 month = 30.4375 days); nothing here converts units.

The functions live by kind in ``summary`` (quartiles, Clopper–Pearson), ``survival`` (Kaplan–Meier, reverse
Kaplan–Meier), ``tests`` (Wilcoxon signed-rank) and ``ols`` (linear regression); they are all importable from
here, ``fhir_pts.analyses.stats``, the public name.
"""

from __future__ import annotations

from fhir_pts.analyses.stats.ols import OlsResult, OlsTerm, ols, ols_design, ols_formula, ols_formula_design
from fhir_pts.analyses.stats.summary import clopper_pearson, quartiles
from fhir_pts.analyses.stats.survival import KaplanMeierEstimate, kaplan_meier, reverse_km_median
from fhir_pts.analyses.stats.tests import WilcoxonResult, wilcoxon_signed_rank

__all__ = [
    "KaplanMeierEstimate",
    "OlsResult",
    "OlsTerm",
    "WilcoxonResult",
    "clopper_pearson",
    "kaplan_meier",
    "ols",
    "ols_design",
    "ols_formula",
    "ols_formula_design",
    "quartiles",
    "reverse_km_median",
    "wilcoxon_signed_rank",
]
