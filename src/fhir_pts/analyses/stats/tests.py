"""The paired Wilcoxon signed-rank test, exactly R ``wilcox.test(x, y, paired = TRUE)``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from fhir_pts.analyses.stats._arrays import _float_array


@dataclass(frozen=True)
class WilcoxonResult:
    """Result of the paired Wilcoxon signed-rank test, as R ``wilcox.test(x, y, paired = TRUE)``.

    ``v``: R's V, the sum of the ranks (average ranks for ties) of the positive differences ``x - y``;
    ``p_value``: two-sided; ``n_nonzero``: number of non-zero differences the test used; ``exact``: whether
    the exact null distribution was used; ``method``: R's method string.
    """

    v: float | None
    p_value: float | None
    n_nonzero: int
    exact: bool
    method: str


_WILCOXON_EXACT = "Wilcoxon signed rank exact test"
_WILCOXON_NORMAL = "Wilcoxon signed rank test with continuity correction"


def wilcoxon_signed_rank(
    baseline: Sequence[float] | npt.ArrayLike, followup: Sequence[float] | npt.ArrayLike
) -> WilcoxonResult:
    """Two-sided paired Wilcoxon signed-rank test, exactly R ``wilcox.test(baseline, followup, paired = TRUE)``.

    R 4.0–4.5 defaults (``exact = NULL``, ``correct = TRUE``; R ≥ 4.6 computes exact conditional p-values
    with ties instead — see docs/statistics.md): pairs with a missing value are dropped (R's
    ``complete.cases``); differences ``d = baseline - followup`` equal to 0 are dropped; V = sum of the average
    ranks of ``|d|`` over the positive ``d``. With ``n`` non-zero differences:

    - exact p (signed-rank distribution, scipy) when ``n < 50`` and there were neither ties among ``|d|`` nor
      zero differences: ``p = min(1, 2 * min(P(V' <= V), P(V' >= V)))``;
    - otherwise the normal approximation with continuity correction and tie-corrected variance:
      ``z = (V - n(n+1)/4 - sign(V - n(n+1)/4) / 2) / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48)``,
      ``p = 2 * min(Phi(z), 1 - Phi(z))`` (``t``: sizes of the groups of tied ``|d|``).

    Parameters
    ----------
    baseline, followup: paired scores of the same subjects, same length.

    Returns
    -------
    :class:`WilcoxonResult`; ``p_value`` None when no non-zero difference is left, and then ``v`` = 0 (R's V)
    when there were pairs (all differences zero), None when there was no pair (R refuses).
    """
    x = _float_array(baseline, "baseline")
    y = _float_array(followup, "followup")
    if x.shape != y.shape:
        raise ValueError(f"baseline ({x.size}) and followup ({y.size}) differ in length")
    ok = ~(np.isnan(x) | np.isnan(y))
    d = x[ok] - y[ok]
    zeroes = bool(np.any(d == 0))
    d = d[d != 0]
    n = int(d.size)
    if n == 0:  # R: V = 0 (no positive difference) and p = NaN when every difference is zero
        v0 = 0.0 if zeroes else None
        return WilcoxonResult(v=v0, p_value=None, n_nonzero=0, exact=False, method=_WILCOXON_NORMAL)
    ranks = sps.rankdata(np.abs(d), method="average")
    v = float(ranks[d > 0].sum())
    _, tie_sizes = np.unique(ranks, return_counts=True)
    ties = bool(np.any(tie_sizes > 1))
    if n < 50 and not ties and not zeroes:
        # scipy's exact two-sided p: 2 * min(P(T <= t), P(T >= t)), capped at 1, T the signed-rank statistic.
        p = float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="exact").pvalue)
        return WilcoxonResult(v=v, p_value=min(1.0, p), n_nonzero=n, exact=True, method=_WILCOXON_EXACT)
    z = v - n * (n + 1) / 4.0
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(tie_sizes**3 - tie_sizes)) / 48.0)
    correction = math.copysign(0.5, z) if z != 0 else 0.0
    zc = (z - correction) / sigma
    p = 2.0 * min(float(sps.norm.cdf(zc)), float(sps.norm.sf(zc)))
    return WilcoxonResult(v=v, p_value=min(1.0, p), n_nonzero=n, exact=False, method=_WILCOXON_NORMAL)
