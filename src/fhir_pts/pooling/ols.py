"""OLS from sufficient statistics (n, XᵀX, Xᵀy, yᵀy), with the conventions of R's ``lm`` that
:func:`fhir_pts.analyses.stats.ols` follows on patient-level data.

The normal equations are solved in exact rational arithmetic (:class:`fractions.Fraction`, from the exact
binary values of the shared sums), so the pooled coefficients are the correctly rounded solution of the pooled
sums: no loss of precision from squaring the condition number of X. Same edge cases as ``stats.ols``:

- aliasing: a term whose part orthogonal to the kept terms before it has a norm below ``1e-7`` times its own
  norm is aliased (R's ``dqrdc2`` rule; the norms are read from XᵀX), all its values None;
- no residual degrees of freedom (n ≤ kept terms): the estimates and R² of the exact fit, no SE / CI / p;
- R² = 0 for an intercept-only fit, None for a constant outcome (R's 0/0), else R's mss / (mss + rss),
  centred when the model has an intercept;
- no complete case: everything None.
"""

from __future__ import annotations

import math
from fractions import Fraction

from scipy import stats as sps

from fhir_pts.analyses.aggregates import CrossProducts
from fhir_pts.analyses.stats.ols import _R_LM_QR_TOL, OlsResult, OlsTerm

_EMPTY = OlsTerm(None, None, None, None, None)


def _solve(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction]:
    """Gauss–Jordan elimination in exact arithmetic (``a`` is positive definite: no pivoting trouble)."""
    k = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(k):
        pivot = next(r for r in range(col, k) if m[r][col] != 0)
        m[col], m[pivot] = m[pivot], m[col]
        p = m[col][col]
        m[col] = [v / p for v in m[col]]
        for r in range(k):
            if r != col and m[r][col] != 0:
                f = m[r][col]
                m[r] = [vr - f * vc for vr, vc in zip(m[r], m[col], strict=True)]
    return [m[i][k] for i in range(k)]


def _inverse_diagonal(a: list[list[Fraction]]) -> list[Fraction]:
    k = len(a)
    return [_solve(a, [Fraction(int(i == j)) for i in range(k)])[j] for j in range(k)]


def _kept(xtx: list[list[Fraction]]) -> list[int]:
    kept: list[int] = []
    for j in range(len(xtx)):
        norm2 = xtx[j][j]
        if norm2 <= 0:
            continue
        if kept:
            sub = [[xtx[r][c] for c in kept] for r in kept]
            coef = _solve(sub, [xtx[r][j] for r in kept])
            resid2 = norm2 - sum((c * xtx[r][j] for c, r in zip(coef, kept, strict=True)), Fraction(0))
        else:
            resid2 = norm2
        if resid2 <= 0 or math.sqrt(float(resid2)) < _R_LM_QR_TOL * math.sqrt(float(norm2)):
            continue
        kept.append(j)
    return kept


def ols_from_cross_products(cp: CrossProducts, alpha: float = 0.05) -> OlsResult:
    """The OLS fit (as :func:`fhir_pts.analyses.stats.ols`) of the patients whose sums ``cp`` holds, with
    ``1 - alpha`` confidence intervals (default 95 %)."""
    names = list(cp.terms)
    if cp.n is None or cp.xtx is None or cp.xty is None or cp.yty is None or cp.y_total is None:
        return OlsResult(n=cp.n or 0, r_squared=None, terms={nm: _EMPTY for nm in names}, formula=cp.formula)
    n, k = int(cp.n), len(names)
    xtx = [[Fraction(cp.xtx[i * k + j]) for j in range(k)] for i in range(k)]
    xty = [Fraction(v) for v in cp.xty]
    yty, ysum = Fraction(cp.yty), Fraction(cp.y_total)
    kept = _kept(xtx) if n > 0 else []
    if n == 0 or not kept:
        return OlsResult(n=n, r_squared=None, terms={nm: _EMPTY for nm in names}, formula=cp.formula)
    a = [[xtx[r][c] for c in kept] for r in kept]
    b = [xty[r] for r in kept]
    beta = _solve(a, b)
    fitted_ss = sum((bj * bv for bj, bv in zip(beta, b, strict=True)), Fraction(0))  # βᵀXᵀy = βᵀXᵀXβ = ŷᵀŷ
    rss = max(yty - fitted_ss, Fraction(0))
    p = len(kept)
    df = n - p
    terms: dict[str, OlsTerm] = {}
    if df > 0:
        sigma2 = rss / df
        diag = _inverse_diagonal(a)
        t_crit = float(sps.t.ppf(0.5 + (1.0 - alpha) / 2.0, df))
    for j, nm in enumerate(names):
        if j not in kept:
            terms[nm] = _EMPTY
            continue
        i = kept.index(j)
        est = float(beta[i])
        if df <= 0:
            terms[nm] = OlsTerm(est, None, None, None, None)
            continue
        se = math.sqrt(float(sigma2 * diag[i]))
        if se > 0:
            tval = est / se
            pval: float | None = float(2.0 * sps.t.sf(abs(tval), df))
        else:
            pval = 0.0 if est != 0 else None
        terms[nm] = OlsTerm(est, est - t_crit * se, est + t_crit * se, pval, se)
    has_intercept = "intercept" in names and names.index("intercept") in kept
    r2: float | None
    if has_intercept and p == 1:
        r2 = 0.0
    else:
        tss = yty - ysum * ysum / n if has_intercept else yty
        if has_intercept and tss <= Fraction(1, 10**12) * yty:  # a constant outcome: R's 0/0
            r2 = None
        else:
            mss = fitted_ss - ysum * ysum / n if has_intercept else fitted_ss
            r2 = float(mss / (mss + rss)) if mss + rss > 0 else None
    return OlsResult(n=n, r_squared=r2, terms=terms, formula=cp.formula)
