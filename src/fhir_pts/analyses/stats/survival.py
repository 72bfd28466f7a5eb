"""Kaplan–Meier with R ``survfit``'s log-log band and median rule; reverse-KM median follow-up.

The vocabulary is lifelines' (``KaplanMeierFitter.fit(durations, event_observed, timeline, alpha)``):

- ``durations``: each subject's time from the time origin to its event or censoring, in the caller's unit (the
  analyses: months from day 0, the date of the index procedure; 1 month = 30.4375 days); nothing here converts;
- ``event_observed``: True when the subject had the event at its duration (loss of patency), False when it was
  censored there (right-censoring: still patent at its last patency finding);
- ``timeline``: the distinct recorded times of a fit, ascending (:attr:`KaplanMeierEstimate.timeline`, R's
  ``fit$time``: lifelines' timeline without the 0 it prepends);
- ``alpha``: one minus the confidence level (0.05: the 95 % band).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fhir_pts.analyses.api import CurvePoint
from fhir_pts.analyses.stats._arrays import _bool_array, _float_array, _none_if_nan, _r_alpha

#: R's tolerance when ``survival`` compares a survival estimate with 0.5 (``sqrt(.Machine$double.eps)``).
_R_SURVFIT_TOL: float = math.sqrt(np.finfo(float).eps)


def _r_survfit_median(times: npt.NDArray[np.float64], surv: npt.NDArray[np.float64]) -> float | None:
    """The median R prints for a ``survfit`` (``summary(fit)$table["median"]``, ``survival:::survmean``).

    ``times`` are all recorded times of the curve (events and censorings), ``surv`` the estimate at each.
    Among the times with S(t) < 0.5 + sqrt(eps), the first one, ``t1``; if S(t1) equals 0.5 (within
    sqrt(eps)) and the curve drops below it later, the midpoint of ``t1`` and the first time it does.
    None (R's NA) when S never reaches 0.5.
    """
    tol = _R_SURVFIT_TOL
    keep = ~np.isnan(surv) & (surv < 0.5 + tol)
    if not keep.any():
        return None
    x, y = times[keep], surv[keep]
    if abs(y[0] - 0.5) < tol and np.any(y < y[0]):
        return float((x[0] + x[int(np.argmax(y < y[0]))]) / 2)
    return float(x[0])


@dataclass(frozen=True, eq=False)
class KaplanMeierEstimate:
    """A Kaplan–Meier estimate with its ``1 - alpha`` (95 %) log-log confidence band, as R ``survfit``.

    Built by :func:`kaplan_meier`. Times are in the unit of the ``durations`` it was fitted on (the analyses:
    months from day 0, the index procedure); an event is ``event_observed`` True, a censoring False.

    Attributes
    ----------
    n: number of subjects.
    events: number of events.
    alpha: one minus the confidence level of the band (lifelines' ``alpha``).
    timeline: the distinct recorded times (events and censorings), ascending — R's ``fit$time``; lifelines'
        ``timeline`` without the 0 it prepends (0 is here only when a subject's duration is 0).
    survival: the estimate S(t) just after each recorded time (events at t included) — R's ``fit$surv``.
    ci_low, ci_high: log-log (Kalbfleisch–Prentice, "exponential Greenwood") bounds at each recorded time;
        NaN where R gives NA, i.e. where S(t) is 1 or 0 (the log-log transform is undefined there).
    n_at_risk: subjects with time ≥ t at each recorded time — R's ``fit$n.risk``.
    n_events: events at each recorded time — R's ``fit$n.event``.
    """

    n: int
    events: int
    alpha: float
    timeline: npt.NDArray[np.float64]
    survival: npt.NDArray[np.float64]
    ci_low: npt.NDArray[np.float64]
    ci_high: npt.NDArray[np.float64]
    n_at_risk: npt.NDArray[np.int64]
    n_events: npt.NDArray[np.int64]
    _durations: npt.NDArray[np.float64] = field(repr=False)

    def at(self, t: float) -> tuple[float, float | None, float | None] | None:
        """The step value at time ``t``, as R ``summary(fit, times = t)``: ``(estimate, ci_low, ci_high)``.

        The value at the last recorded time ≤ ``t`` (right-continuous: events at exactly ``t`` count).
        Before the first recorded time: ``(1.0, 1.0, 1.0)``, as R's ``summary`` reports its start row. A CI
        bound is None where R gives NA (S = 1 or S = 0 at a recorded time). Returns None when ``t`` is beyond
        the largest recorded time (last event or censoring) or when there are no subjects — the curve is not
        extended past the last follow-up.
        """
        t = float(t)
        if math.isnan(t) or t < 0:
            raise ValueError(f"t must be a time >= 0, got {t}")
        if self.n == 0 or t > self.timeline[-1]:
            return None
        i = int(np.searchsorted(self.timeline, t, side="right")) - 1
        if i < 0:
            return 1.0, 1.0, 1.0
        return float(self.survival[i]), _none_if_nan(self.ci_low[i]), _none_if_nan(self.ci_high[i])

    def at_risk(self, t: float) -> int:
        """Number at risk at time ``t``: subjects whose time is ≥ ``t`` (R ``summary(fit, times = t)$n.risk``)."""
        return int(np.count_nonzero(self._durations >= float(t)))

    def curve(self) -> list[CurvePoint]:
        """The step curve: one point at time 0 and one at each distinct recorded time (if 0 is recorded, once).

        Each point is R ``summary(fit, times = t)`` at that time: the estimate after the events at ``t``, the
        log-log CI (None where R gives NA; at time 0 before any recorded time ``1.0, 1.0``) and the number at
        risk just before ``t`` (time ≥ ``t``). Empty when there are no subjects.
        """
        if self.n == 0:
            return []
        points: list[CurvePoint] = []
        if self.timeline[0] > 0:
            points.append(CurvePoint(time_months=0.0, estimate=1.0, ci_low=1.0, ci_high=1.0, at_risk=self.n))
        for i, t in enumerate(self.timeline):
            points.append(
                CurvePoint(
                    time_months=float(t),
                    estimate=float(self.survival[i]),
                    ci_low=_none_if_nan(self.ci_low[i]),
                    ci_high=_none_if_nan(self.ci_high[i]),
                    at_risk=int(self.n_at_risk[i]),
                )
            )
        return points

    def median(self) -> float | None:
        """Median time, as R prints it for the fit (``print(fit)``, ``summary(fit)$table["median"]``).

        The first recorded time with S(t) ≤ 0.5 (R: S < 0.5 + sqrt(eps)); when S equals 0.5 there (within
        sqrt(eps)), the midpoint between that time and the next time the curve drops below 0.5 — or that time
        itself if the curve never drops again (there R's ``quantile(fit, 0.5)`` would instead take the
        midpoint with the last recorded time; see docs/statistics.md). None when S never reaches 0.5 ("not
        reached") or there are no subjects.
        """
        if self.n == 0:
            return None
        return _r_survfit_median(self.timeline, self.survival)


def kaplan_meier(
    durations: Sequence[float] | npt.ArrayLike,
    event_observed: Sequence[bool] | npt.ArrayLike,
    alpha: float = 0.05,
) -> KaplanMeierEstimate:
    """Kaplan–Meier estimate with a log-log confidence band, as R ``survfit(Surv(t, e) ~ 1, conf.type = "log-log")``.

    The estimate and the interior of the band come from lifelines ``KaplanMeierFitter`` (its default
    "exponential Greenwood" band is the log-log band with Greenwood's variance, the same formula as R). R's
    edges are applied on top: where S(t) = 1 or S(t) = 0 the bounds are undefined (R: NA; here NaN in the
    arrays, None from the accessors) — lifelines would report 1 / 0 there.

    Parameters
    ----------
    durations: time of each subject from the time origin (the analyses: months from day 0, the index
        procedure) to its event or censoring; ≥ 0, no missing values.
    event_observed: True when the subject had the event at that time (loss of patency), False when it was
        censored there (right-censoring); no missing values.
    alpha: one minus the confidence level of the band (default 0.05: 95 %), as lifelines.

    Returns
    -------
    A :class:`KaplanMeierEstimate` (``n = 0`` and empty arrays for no subjects).
    """
    from lifelines import KaplanMeierFitter

    t = _float_array(durations, "durations")
    e = _bool_array(event_observed, "event_observed")
    if t.shape != e.shape:
        raise ValueError(f"durations ({t.size}) and event_observed ({e.size}) differ in length")
    if np.isnan(t).any():
        raise ValueError("durations: missing values")
    if (t < 0).any() or np.isinf(t).any():
        raise ValueError("durations must be finite and >= 0")
    r_alpha = _r_alpha(alpha)  # validated; R's 1 - conf.level
    if t.size == 0:
        empty_f = np.empty(0, dtype=float)
        empty_i = np.empty(0, dtype=np.int64)
        return KaplanMeierEstimate(0, 0, float(alpha), empty_f, empty_f, empty_f, empty_f, empty_i, empty_i, t)

    kmf = KaplanMeierFitter(alpha=r_alpha)
    kmf.fit(t, event_observed=e)
    times = np.unique(t)
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    survival = sf.loc[times].to_numpy(dtype=float)
    low = ci.iloc[:, 0].loc[times].to_numpy(dtype=float).copy()
    high = ci.iloc[:, 1].loc[times].to_numpy(dtype=float).copy()
    undefined = (survival == 0.0) | (survival == 1.0)
    low[undefined] = np.nan
    high[undefined] = np.nan
    table = kmf.event_table.loc[times]
    n_at_risk = (t.size - np.searchsorted(np.sort(t), times, side="left")).astype(np.int64)
    if not np.array_equal(n_at_risk, table["at_risk"].to_numpy(dtype=np.int64)):  # pragma: no cover - sanity
        raise AssertionError("lifelines' number at risk disagrees with the durations")
    return KaplanMeierEstimate(
        n=int(t.size),
        events=int(e.sum()),
        alpha=float(alpha),
        timeline=times,
        survival=survival,
        ci_low=low,
        ci_high=high,
        n_at_risk=n_at_risk,
        n_events=table["observed"].to_numpy(dtype=np.int64),
        _durations=t,
    )


def reverse_km_median(
    durations: Sequence[float] | npt.ArrayLike, event_observed: Sequence[bool] | npt.ArrayLike
) -> float | None:
    """Median follow-up by the reverse Kaplan–Meier method (Schemper & Smith 1996).

    The status is flipped (a censoring becomes the event, an event a censoring) and the median of that
    Kaplan–Meier curve is taken with R's rule, i.e. the median R prints for
    ``survfit(Surv(t, 1 - e) ~ 1)`` (see :meth:`KaplanMeierEstimate.median`).

    Parameters
    ----------
    durations: time of each subject from the time origin (months from day 0 in the analyses), ≥ 0.
    event_observed: True for an event (loss of patency), False for a censoring — as for :func:`kaplan_meier`.

    Returns
    -------
    The median potential follow-up in the unit of ``durations``; None when the reverse curve never reaches 0.5
    or there are no subjects.
    """
    e = _bool_array(event_observed, "event_observed")
    return kaplan_meier(durations, ~e).median()
