"""Descriptive statistics: quartiles (R ``quantile(type = 7)``) and the Clopper–Pearson interval
(R ``binom.test``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fhir_pts.analyses.stats._arrays import _float_array, _r_alpha


def quartiles(values: Sequence[float] | npt.ArrayLike) -> tuple[float | None, float | None, float | None]:
    """First quartile, median and third quartile, as numpy's default (``linear``) = R ``quantile(type = 7)``.

    Parameters
    ----------
    values: the observations; ``None``, ``pd.NA`` and NaN are dropped.

    Returns
    -------
    ``(q1, median, q3)``; ``(None, None, None)`` when no value is left.
    """
    arr = _float_array(values, "values")
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return None, None, None
    q1, med, q3 = np.quantile(arr, [0.25, 0.5, 0.75], method="linear")
    return float(q1), float(med), float(q3)


def clopper_pearson(successes: int, trials: int, alpha: float = 0.05) -> tuple[float | None, float | None]:
    """Exact (Clopper–Pearson) ``1 - alpha`` confidence interval of a binomial proportion, as R
    ``binom.test(x, n, conf.level = 1 - alpha)$conf.int``.

    The bounds are the ``alpha / 2`` and ``1 - alpha / 2`` quantiles of the beta distributions
    ``Beta(x, n - x + 1)`` and ``Beta(x + 1, n - x)`` (statsmodels ``proportion_confint(method="beta")``),
    with R's edges: the lower bound is exactly 0 when ``x = 0`` and the upper bound exactly 1 when ``x = n``.

    Parameters
    ----------
    successes: number of successes ``x`` (0 ≤ x ≤ n).
    trials: number of trials ``n``.
    alpha: one minus the confidence level (default 0.05: a 95 % interval), as lifelines' ``alpha``.

    Returns
    -------
    ``(ci_low, ci_high)`` as proportions in [0, 1]; ``(None, None)`` when ``trials == 0``.
    """
    from statsmodels.stats.proportion import proportion_confint

    x, n = int(successes), int(trials)
    if x != successes or n != trials:
        raise ValueError("successes and trials must be whole numbers")
    if n < 0 or x < 0 or x > n:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    alpha = _r_alpha(alpha)
    if n == 0:
        return None, None
    low, high = proportion_confint(x, n, alpha=alpha, method="beta")
    low = 0.0 if x == 0 else float(low)
    high = 1.0 if x == n else float(high)
    return low, high
