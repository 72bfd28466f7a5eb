"""Figures of the pooled report: per-site and pooled Kaplan–Meier curves, a forest plot of per-site estimates.

Drawn from the sites' aggregates only (no patient data), with the report's matplotlib style
(:func:`fhir_pts.outputs.figures.figure_style`) and rendered to deterministic SVG (:func:`render`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.figure import Figure

from fhir_pts.analyses.api import CurvePoint
from fhir_pts.outputs.rendering import figure_style

#: Colours of the sites (Okabe–Ito, colour-blind safe); the pooled curve is black.
SITE_COLOURS: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


def _steps(points: Sequence[CurvePoint]) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for p in points:
        xs.append(p.time_months)
        ys.append(p.estimate)
    return xs, ys


def km_panels(panels: Mapping[str, tuple[Mapping[str, Sequence[CurvePoint]], Sequence[CurvePoint]]]) -> Figure | None:
    """One panel per KM measure: each site's curve (thin, coloured) and the pooled one (black, 95 % CI band).

    ``panels``: title → (site label → curve points, pooled curve points).
    """
    drawable = {t: v for t, v in panels.items() if v[1]}
    if not drawable:
        return None
    with figure_style():
        fig = Figure(figsize=(9.0, 3.2 * len(drawable)))
        for row, (title, (site_curves, pooled)) in enumerate(drawable.items()):
            ax = fig.add_subplot(len(drawable), 1, row + 1)
            for i, (label, curve) in enumerate(site_curves.items()):
                if curve:
                    xs, ys = _steps(curve)
                    colour = SITE_COLOURS[i % len(SITE_COLOURS)]
                    ax.step(xs, ys, where="post", color=colour, linewidth=1.0, alpha=0.85, label=f"site {label}")
            xs, ys = _steps(pooled)
            low = [p.ci_low if p.ci_low is not None else p.estimate for p in pooled]
            high = [p.ci_high if p.ci_high is not None else p.estimate for p in pooled]
            ax.fill_between(xs, low, high, step="post", color="#000000", alpha=0.1, linewidth=0)
            ax.step(xs, ys, where="post", color="#000000", linewidth=2.0, label="pooled")
            ax.set_ylim(0, 1.04)
            ax.set_xlim(left=0)
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0, decimals=0))
            ax.set_title(title, loc="left")
            ax.set_ylabel("Patent (KM)")
            ax.legend(loc="lower left", fontsize=8, ncol=2)
        fig.axes[-1].set_xlabel("Months since the index stenting procedure")
        fig.tight_layout()
    return fig


@dataclass(frozen=True)
class SiteEstimate:
    """One line of the forest plot: a site's estimate (or the pooled one) with its 95 % CI."""

    label: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    pooled: bool = False


def site_forest(panels: Mapping[str, Sequence[SiteEstimate]]) -> Figure | None:
    """One panel per estimate: per-site estimates (circles) and the pooled one (black diamond), with 95 % CIs
    (unlike :func:`fhir_pts.outputs.figures.forest_figure`, which draws regression coefficients)."""
    drawable = {t: rows for t, rows in panels.items() if any(r.estimate is not None for r in rows)}
    if not drawable:
        return None
    heights = [0.5 + 0.32 * len(rows) for rows in drawable.values()]
    with figure_style():
        fig = Figure(figsize=(8.0, sum(heights) + 0.6))
        grid = fig.add_gridspec(len(drawable), 1, height_ratios=heights)
        for row, (title, rows) in enumerate(drawable.items()):
            ax = fig.add_subplot(grid[row])
            labels = []
            for y, r in enumerate(reversed(list(rows))):
                labels.append(r.label)
                if r.estimate is None or (isinstance(r.estimate, float) and math.isnan(r.estimate)):
                    continue
                lo = r.ci_low if r.ci_low is not None else r.estimate
                hi = r.ci_high if r.ci_high is not None else r.estimate
                colour = "#000000" if r.pooled else "#0072B2"
                ax.plot([lo, hi], [y, y], color=colour, linewidth=1.4)
                ax.plot([r.estimate], [y], marker="D" if r.pooled else "o", color=colour, ms=7 if r.pooled else 5)
            ax.set_yticks(range(len(labels)))
            ax.set_yticklabels(labels)
            ax.set_ylim(-0.7, len(labels) - 0.3)
            ax.set_title(title, loc="left")
        fig.tight_layout()
    return fig
