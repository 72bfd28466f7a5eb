"""The figures of the clinician's report, drawn with matplotlib (Agg, no pyplot state).

Every function returns a :class:`matplotlib.figure.Figure` (or ``None`` when there is nothing to draw) built
without ``pyplot``, in :func:`~fhir_pts.outputs.rendering.figure_style`, so figures never leak into a global
state and no display is needed. :mod:`fhir_pts.outputs.rendering` turns them into deterministic SVG, PNG and PDF
files.

Figures:

- :func:`flow_figure` — the STROBE/CONSORT-style patient flow (main boxes, exclusions on the right);
- :func:`km_figure` — the analyses' Kaplan–Meier curves (primary, primary-assisted, secondary patency) on one
  axis as computed (nothing refitted), 95 % confidence bands, censoring marks, stopped where few remain at risk,
  months on the x axis and a number-at-risk table under it;
- :func:`scores_figure` — Villalta and CIVIQ-20 at baseline and 3 months: one line per patient plus box plots;
- :func:`forest_figure` — regression coefficients with 95 % CIs, one panel per model.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from fhir_pts.outputs.rendering import figure_style

#: One colour per patency definition (colour-blind safe, Okabe–Ito).
PATENCY_COLOURS: dict[str, str] = {
    "primary_patency": "#0072B2",
    "primary_assisted_patency": "#E69F00",
    "secondary_patency": "#009E73",
}
PATENCY_LABELS: dict[str, str] = {
    "primary_patency": "Primary patency",
    "primary_assisted_patency": "Primary-assisted patency",
    "secondary_patency": "Secondary patency",
}
#: Above this many complete pairs the per-patient lines of :func:`scores_figure` are left out (boxes only).
MAX_PAIR_LINES = 400


# --- patient flow ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowStage:
    """One box of the flow diagram: a title, the count(s), and the exclusions on the way to the next box."""

    title: str
    count: str
    excluded: Sequence[str] = field(default_factory=tuple)


def _box(ax: Axes, x: float, y: float, w: float, h: float, *, face: str, edge: str) -> None:
    """A rounded box with its lower-left corner at (x, y), in inches."""
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08", facecolor=face, edgecolor=edge, linewidth=1.1
        )
    )


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": "#41505f", "linewidth": 1.1, "shrinkA": 0, "shrinkB": 0},
    )


#: Flow-diagram geometry, in inches.
_FLOW_WIDTH = 9.0
_MAIN_X, _MAIN_W = 0.1, 4.0
_SIDE_X, _SIDE_W = 4.75, 4.15
_LINE_H = 0.2
_MAIN_H = 0.82


def _wrap(items: Sequence[str], width: int) -> list[str]:
    lines: list[str] = []
    for item in items:
        lines.extend(textwrap.wrap(item, width) or [""])
    return lines


def flow_figure(stages: Sequence[FlowStage]) -> Figure:
    """The patient flow: main boxes top to bottom, the exclusions between two stages in a box on the right.

    Each main box shows the stage's title and its count (bold); the box of exclusions hangs off the arrow to
    the next stage (for the last stage, off the box itself).
    """
    side_lines = [_wrap(stage.excluded, 56) for stage in stages]
    side_h = [(_LINE_H * len(lines) + 0.28) if lines else 0.0 for lines in side_lines]
    gaps = [max(0.55, h + 0.3) for h in side_h[:-1]]
    if len(stages) > 1 and side_h[-1]:  # the last side box sits beside its main box: keep it clear of the one above
        gaps[-1] = max(gaps[-1], side_h[-1] - _MAIN_H + side_h[-2] + 0.2)
    last_extra = max(0.0, side_h[-1] - _MAIN_H) if stages else 0.0
    height = 0.2 + _MAIN_H * len(stages) + sum(gaps) + last_extra + 0.2
    with figure_style():
        fig = Figure(figsize=(_FLOW_WIDTH, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, _FLOW_WIDTH)
        ax.set_ylim(0, height)
        top = height - 0.2  # boxes are laid out from the top
        centre_x = _MAIN_X + _MAIN_W / 2
        for i, stage in enumerate(stages):
            y = top - _MAIN_H
            _box(ax, _MAIN_X, y, _MAIN_W, _MAIN_H, face="#eaf2fb", edge="#2f6db0")
            title = "\n".join(textwrap.wrap(stage.title, 50))
            ax.text(centre_x, y + _MAIN_H * 0.66, title, ha="center", va="center", fontsize=9.5, color="#1d2630")
            ax.text(
                centre_x, y + _MAIN_H * 0.24, stage.count, ha="center", va="center", fontsize=11,
                fontweight="bold", color="#123a66",
            )  # fmt: skip
            lines = side_lines[i]
            if i + 1 < len(stages):
                gap = gaps[i]
                _arrow(ax, (centre_x, y), (centre_x, y - gap))
                mid = y - gap / 2
            else:
                gap = 0.0
                mid = y + _MAIN_H / 2
            if lines:
                h = side_h[i]
                _box(ax, _SIDE_X, mid - h / 2, _SIDE_W, h, face="#fbf3e6", edge="#b07a2f")
                ax.text(
                    _SIDE_X + 0.15, mid, "\n".join(lines), ha="left", va="center", fontsize=9, color="#1d2630",
                    linespacing=1.3,
                )  # fmt: skip
                start_x = centre_x if i + 1 < len(stages) else _MAIN_X + _MAIN_W
                _arrow(ax, (start_x, mid), (_SIDE_X, mid))
            top = y - gap
    return fig


# --- Kaplan–Meier -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KmCurve:
    """One Kaplan–Meier curve as the analysis computed it (its ``curves["kaplan-meier"]``), to draw as is.

    ``points`` are :class:`~fhir_pts.analyses.api.CurvePoint`-like objects (``time_months``, ``estimate``,
    ``ci_low``, ``ci_high``, ``at_risk``): time 0 and every distinct recorded time, the number at risk just
    before each time.
    """

    label: str
    colour: str
    points: Sequence[Any]


def at_risk_at(points: Sequence[Any], t: float) -> int:
    """Patients at risk at ``t`` (time ≥ ``t``, the contract's ``at_risk_<t>m``), read off the curve."""
    for p in points:
        if p.time_months >= t - 1e-9:
            return int(p.at_risk)
    return 0


def censored_times(points: Sequence[Any]) -> list[tuple[float, float]]:
    """``(time, estimate)`` of every time at which a patient was censored, derived from the curve.

    At each recorded time the events are ``d = n (1 − S / S_prev)`` and the censored ``n − d − n_next``.
    """
    marks = []
    previous = 1.0
    for i, p in enumerate(points):
        n = int(p.at_risk)
        events = round(n * (1.0 - p.estimate / previous)) if previous > 0 else 0
        following = int(points[i + 1].at_risk) if i + 1 < len(points) else 0
        if n - events - following > 0:
            marks.append((float(p.time_months), float(p.estimate)))
        previous = p.estimate
    return marks


def truncation_time(points: Sequence[Any], minimum: int) -> float:
    """The time up to which a curve is drawn: the last recorded time with at least ``minimum`` at risk."""
    kept = [p.time_months for p in points if p.at_risk >= minimum]
    return float(kept[-1]) if kept else 0.0


def km_min_at_risk(n: int) -> int:
    """Fewest patients at risk for a curve to go on: 10 % of the patients, at least 5 (Pocock et al. 2002)."""
    return max(5, math.ceil(0.1 * n))


@dataclass(frozen=True)
class KmLayout:
    """How the Kaplan–Meier figure is laid out: the one place of the rules its caption and the methods quote.

    ``min_at_risk``: fewest patients at risk for a curve to go on (:func:`km_min_at_risk` of the patients at
    time 0, unless given); ``stops``: per curve label, the month at which it stops (:func:`truncation_time`);
    ``ticks``: the months on the x axis (every 6, or 12 beyond 48 months) up to ``x_max``; ``at_risk``: per
    curve label, the number at risk at each tick, read off the analysis' curve (:func:`at_risk_at`, the
    contract's ``at_risk_<t>m``).
    """

    min_at_risk: int
    stops: dict[str, float]
    x_max: float
    ticks: tuple[int, ...]
    at_risk: dict[str, tuple[int, ...]]


def km_layout(curves: Sequence[KmCurve], min_at_risk: int | None = None) -> KmLayout | None:
    """The layout of :func:`km_figure` for ``curves`` (``None`` when no curve has a point)."""
    drawable = [c for c in curves if c.points]
    if not drawable:
        return None
    n0 = max(int(c.points[0].at_risk) for c in drawable)
    minimum = min_at_risk if min_at_risk is not None else km_min_at_risk(n0)
    stops = {c.label: truncation_time(c.points, minimum) for c in drawable}
    last = max(max(stops.values()), 1.0)
    step = 6 if last <= 48 else 12
    x_max = max(12.0, math.ceil(last / step) * step)
    ticks = tuple(range(0, int(x_max) + 1, step))
    at_risk = {c.label: tuple(at_risk_at(c.points, tick) for tick in ticks) for c in drawable}
    return KmLayout(minimum, stops, x_max, ticks, at_risk)


def km_figure(
    curves: Sequence[KmCurve], min_at_risk: int | None = None, *, layout: KmLayout | None = None
) -> tuple[Figure, KmLayout] | None:
    """The analyses' Kaplan–Meier curves on one axis, with 95 % CI bands and a number-at-risk table.

    Nothing is refitted: the steps, the log-log band and the numbers at risk are those of the analyses (the
    MeasureReports' survival-curve extension). Each curve stops where fewer than ``min_at_risk`` patients
    remain at risk (default :func:`km_min_at_risk` of the patients at time 0), as usual in clinical papers; the
    numbers at risk under the plot go on to the last tick. ``layout`` (from :func:`km_layout`) is computed when
    not given. Returns the figure and its layout (the month at which each curve stops: ``layout.stops``);
    ``None`` when no curve has a point.
    """
    drawable = [c for c in curves if c.points]
    layout = layout if layout is not None else km_layout(drawable, min_at_risk)
    if layout is None:
        return None
    stops, x_max, ticks = layout.stops, layout.x_max, list(layout.ticks)
    with figure_style():
        fig = Figure(figsize=(9.0, 6.4))
        ax = fig.add_axes((0.2, 0.36, 0.76, 0.58))
        table_ax = fig.add_axes((0.2, 0.04, 0.76, 0.2))
        for curve in drawable:
            stop = stops[curve.label]
            pts = [p for p in curve.points if p.time_months <= stop + 1e-9]
            times = np.array([p.time_months for p in pts] + [stop])
            est = np.array([p.estimate for p in pts] + [pts[-1].estimate])
            low = np.array([np.nan if p.ci_low is None else p.ci_low for p in pts] + [np.nan])
            high = np.array([np.nan if p.ci_high is None else p.ci_high for p in pts] + [np.nan])
            low[-1], high[-1] = low[-2], high[-2]
            ax.step(times, est, where="post", color=curve.colour, linewidth=1.8, label=curve.label)
            ax.fill_between(times, low, high, step="post", color=curve.colour, alpha=0.12, linewidth=0)
            marks = [(t, s) for t, s in censored_times(curve.points) if t <= stop + 1e-9]
            if marks:
                mt, ms = zip(*marks, strict=True)
                ax.plot(mt, ms, linestyle="none", marker="|", ms=7, mew=1.2, color=curve.colour)
        ax.set_xlim(0, x_max)
        ax.set_ylim(0, 1.04)
        ax.set_xticks(ticks)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlabel("Months since the index stenting procedure")
        ax.set_ylabel("Patent stents (Kaplan–Meier estimate)")
        ax.set_title("Stent patency (shaded: 95 % confidence interval; |: censored)", loc="left")
        ax.legend(loc="lower left")
        table_ax.set_xlim(0, x_max)
        table_ax.set_ylim(-0.5, len(drawable) - 0.5)
        table_ax.set_axis_off()
        table_ax.text(-0.25, 1.0, "Number at risk", transform=table_ax.transAxes, fontsize=9.5, fontweight="bold",
                      ha="left", va="bottom")  # fmt: skip
        for row, curve in enumerate(drawable):
            y = len(drawable) - 1 - row
            label = curve.label.replace(" patency", "")
            table_ax.text(-0.06, y, label, transform=table_ax.get_yaxis_transform(), ha="right", va="center",
                          fontsize=9, color=curve.colour, fontweight="bold")  # fmt: skip
            for tick, n in zip(ticks, layout.at_risk[curve.label], strict=True):
                table_ax.text(tick, y, str(n), ha="center", va="center", fontsize=9)
    return fig, layout


# --- scores before / after ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScorePanel:
    """One panel of :func:`scores_figure`: the cohort columns to pair and the text under the title."""

    title: str
    baseline_column: str
    followup_column: str
    annotation: str = ""
    y_label: str = "score"


def scores_figure(patients: pd.DataFrame, panels: Sequence[ScorePanel]) -> Figure | None:
    """Baseline vs 3-month scores: one line per patient (complete pairs) and a box plot per time point.

    Returns ``None`` when no panel has a complete pair.
    """
    pairs = []
    for panel in panels:
        if panel.baseline_column in patients and panel.followup_column in patients:
            frame = patients[[panel.baseline_column, panel.followup_column]].dropna().astype(float)
        else:
            frame = pd.DataFrame(columns=[panel.baseline_column, panel.followup_column], dtype=float)
        pairs.append(frame)
    if all(len(f) == 0 for f in pairs):
        return None
    with figure_style():
        fig = Figure(figsize=(4.4 * len(panels), 5.0))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel, frame in zip(axes, panels, pairs, strict=True):
            ax.set_title(panel.title + "\n", loc="left")
            ax.set_ylabel(panel.y_label)
            ax.grid(axis="x", visible=False)
            if len(frame) > 0:
                base = frame.iloc[:, 0].to_numpy()
                follow = frame.iloc[:, 1].to_numpy()
                if len(frame) <= MAX_PAIR_LINES:
                    colours = np.where(follow < base, "#2f6db0", np.where(follow > base, "#b0452f", "#8a8f96"))
                    segments = [[(0.14, b), (0.86, f)] for b, f in zip(base, follow, strict=True)]
                    ax.add_collection(
                        LineCollection(segments, colors=list(colours), alpha=0.4, linewidths=0.9, zorder=1)
                    )
                else:
                    ax.text(0.5, 0.02, f"{len(frame)} pairs: patient lines not drawn", transform=ax.transAxes,
                            ha="center", fontsize=8, color="#555")  # fmt: skip
                ax.boxplot(
                    [base, follow],
                    positions=[0, 1],
                    widths=0.24,
                    showfliers=True,
                    patch_artist=True,
                    boxprops={"facecolor": "#ffffff", "edgecolor": "#1d2630"},
                    medianprops={"color": "#1d2630", "linewidth": 2.2},
                    flierprops={"marker": "o", "markersize": 3},
                    zorder=2,
                )
                ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            else:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes, color="#777")
            ax.set_xticks([0, 1], ["Baseline", "3 months"])
            ax.set_xlim(-0.5, 1.5)
            if panel.annotation:
                ax.text(0.0, 1.02, panel.annotation, transform=ax.transAxes, ha="left", va="bottom", fontsize=9)
        fig.text(
            0.5, -0.01, "One line per patient with both scores (blue: improved, red: worsened, grey: unchanged)",
            ha="center", fontsize=8.5, color="#444",
        )  # fmt: skip
        fig.subplots_adjust(wspace=0.35)
    return fig


# --- forest plot ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForestRow:
    """One coefficient: label, estimate and 95 % CI (``None`` when not available)."""

    label: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None


def _fixed(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals and a typographic minus; never ``−0.00`` for a value that rounds to 0."""
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace("-", "−")


def forest_figure(models: Mapping[str, Sequence[ForestRow]]) -> Figure | None:
    """Regression coefficients (β, 95 % CI) per model, one panel per model stacked vertically.

    A dashed line marks no effect (β = 0); each row is labelled with its β and CI on the right. Returns
    ``None`` when no model has an estimate.
    """
    drawable = {title: [r for r in rows if r.estimate is not None] for title, rows in models.items()}
    drawable = {k: v for k, v in drawable.items() if v}
    if not drawable:
        return None
    heights = [0.45 * len(v) + 0.9 for v in drawable.values()]
    with figure_style():
        fig = Figure(figsize=(9.0, sum(heights) + 0.3))
        axes = fig.subplots(len(drawable), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
        for ax, (title, rows) in zip(axes, drawable.items(), strict=True):
            ys = np.arange(len(rows))[::-1]
            for y, r in zip(ys, rows, strict=True):
                if r.ci_low is not None and r.ci_high is not None:
                    ax.plot([r.ci_low, r.ci_high], [y, y], color="#2f6db0", linewidth=2.0, solid_capstyle="butt")
                    ci = f"{_fixed(r.ci_low)} to {_fixed(r.ci_high)}"
                else:
                    ci = "CI not available"
                ax.plot([r.estimate], [y], marker="s", color="#1d2630", markersize=6)
                ax.text(
                    1.02, y, f"{_fixed(r.estimate)} ({ci})", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=9, color="#1d2630",
                )  # fmt: skip
            ax.axvline(0.0, color="#b0452f", linewidth=1.0, linestyle="--")
            ax.set_yticks(ys, [r.label for r in rows])
            ax.set_ylim(-0.7, len(rows) - 0.3)
            ax.set_title(title, loc="left")
            ax.text(1.02, len(rows) - 0.3, "β (95 % CI)", transform=ax.get_yaxis_transform(), va="bottom",
                    fontsize=9, fontweight="bold")  # fmt: skip
            ax.grid(axis="y", visible=False)
        axes[-1].set_xlabel("β: change in the gain (points) per unit of the predictor")
        fig.subplots_adjust(left=0.3, right=0.74, hspace=0.55)
    return fig
