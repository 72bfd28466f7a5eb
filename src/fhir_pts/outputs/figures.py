"""The figures of the clinician's report, drawn with matplotlib (Agg, no pyplot state) and saved as SVG + PNG.

Every function returns a :class:`matplotlib.figure.Figure` (or ``None`` when there is nothing to draw) built
without ``pyplot``, so figures never leak into a global state and no display is needed. :func:`render` turns
a figure into deterministic bytes: the same data give byte-identical SVG and PNG files (fixed
``svg.hashsalt``, no creation date or software stamp in the metadata), so a figure in a paper can be traced
to the run that made it.

Figures:

- :func:`flow_figure` — the STROBE/CONSORT-style patient flow (main boxes, exclusions on the right);
- :func:`km_figure` — Kaplan–Meier curves of primary, primary-assisted and secondary patency on one axis,
  95 % confidence bands, censoring marks, months on the x axis and a number-at-risk table under it;
- :func:`scores_figure` — Villalta and CIVIQ-20 at baseline and 3 months: one line per patient plus box plots;
- :func:`forest_figure` — regression coefficients with 95 % CIs, one panel per model.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

#: Style of every figure (applied with :func:`matplotlib.rc_context`, never globally).
RC_PARAMS: dict[str, object] = {
    "svg.hashsalt": "fhir-pts",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.dpi": 150,
    "path.simplify": False,
}

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
#: Times (months) of the number-at-risk table, as the ``at_risk_<t>m`` statistics of the contract.
AT_RISK_MONTHS: tuple[int, ...] = (0, 6, 12, 24, 36)


@contextmanager
def figure_style() -> Iterator[None]:
    """Context in which figures are built and saved with the report's style (Agg backend, fixed hash salt)."""
    with matplotlib.rc_context(RC_PARAMS):
        yield


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` complete or not at all: a temp file in the same folder, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class RenderedFigure:
    """A figure rendered to bytes, and where it was saved (``None`` before :func:`save_figure`)."""

    name: str
    svg: bytes
    png: bytes
    svg_path: Path | None = None
    png_path: Path | None = None


def render(fig: Figure, name: str) -> RenderedFigure:
    """Render ``fig`` to deterministic SVG and PNG bytes (no dates, no software stamp)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attach an Agg canvas: no GUI backend is ever involved
    with figure_style():
        svg_buf = io.BytesIO()
        fig.savefig(svg_buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
        png_buf = io.BytesIO()
        fig.savefig(png_buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    return RenderedFigure(name=name, svg=svg_buf.getvalue(), png=png_buf.getvalue())


def save_figure(fig: Figure, directory: Path, name: str) -> RenderedFigure:
    """Render ``fig`` and write ``directory/<name>.svg`` and ``.png`` atomically (temp file + ``os.replace``)."""
    rendered = render(fig, name)
    directory.mkdir(parents=True, exist_ok=True)
    svg_path = directory / f"{name}.svg"
    png_path = directory / f"{name}.png"
    atomic_write_bytes(svg_path, rendered.svg)
    atomic_write_bytes(png_path, rendered.png)
    return RenderedFigure(name, rendered.svg, rendered.png, svg_path, png_path)


# --- patient flow ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowStage:
    """One box of the flow diagram: a title, the count(s), and the exclusions on the way to the next box."""

    title: str
    count: str
    excluded: Sequence[str] = field(default_factory=tuple)


def _box(ax: object, x: float, y: float, w: float, h: float, text: str, *, face: str, edge: str, bold: bool) -> None:
    ax.add_patch(  # type: ignore[attr-defined]
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.004,rounding_size=0.012", facecolor=face, edgecolor=edge, linewidth=1.1
        )
    )
    ax.text(  # type: ignore[attr-defined]
        x + w / 2,
        y + h / 2,
        text,
        ha="center",
        va="center",
        fontsize=9.5,
        fontweight="bold" if bold else "normal",
        linespacing=1.35,
        color="#1d2630",
    )


def flow_figure(stages: Sequence[FlowStage]) -> Figure:
    """The patient flow: main boxes top to bottom, each stage's exclusions in a box on the right."""
    n = len(stages)
    with figure_style():
        fig = Figure(figsize=(9.0, 1.55 * n + 0.3))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        row_h = 1.0 / n
        box_h = row_h * 0.62
        main_x, main_w = 0.03, 0.45
        side_x, side_w = 0.56, 0.42
        for i, stage in enumerate(stages):
            y = 1.0 - (i + 1) * row_h + (row_h - box_h) / 2 + row_h * 0.1
            title = "\n".join(textwrap.wrap(stage.title, 40))
            _box(ax, main_x, y, main_w, box_h, f"{title}\n{stage.count}", face="#eaf2fb", edge="#2f6db0", bold=False)
            if i + 1 < n:
                next_top = 1.0 - (i + 1) * row_h + (row_h - box_h) / 2 + row_h * 0.1 - row_h + box_h
                ax.annotate(
                    "",
                    xy=(main_x + main_w / 2, next_top + 0.004),
                    xytext=(main_x + main_w / 2, y - 0.004),
                    arrowprops={"arrowstyle": "-|>", "color": "#41505f", "linewidth": 1.2},
                )
            if stage.excluded:
                lines: list[str] = []
                for item in stage.excluded:
                    lines.extend(textwrap.wrap(item, 52) or [""])
                side_h = min(row_h * 0.95, max(box_h * 0.75, 0.028 * len(lines) + 0.03))
                side_y = y - (row_h - box_h) / 2 - side_h / 2 + 0.01
                if i + 1 == n:
                    side_y = y + box_h / 2 - side_h / 2
                _box(ax, side_x, side_y, side_w, side_h, "\n".join(lines), face="#fbf3e6", edge="#b07a2f", bold=False)
                mid_y = side_y + side_h / 2
                ax.annotate(
                    "",
                    xy=(side_x - 0.004, mid_y),
                    xytext=(main_x + main_w / 2, mid_y),
                    arrowprops={"arrowstyle": "-|>", "color": "#41505f", "linewidth": 1.0},
                )
    return fig


# --- Kaplan–Meier -------------------------------------------------------------------------------


def _patency_data(patients: pd.DataFrame, definition: str) -> tuple[np.ndarray, np.ndarray]:
    months_col, lost_col = f"{definition}_months", f"{definition}_lost"
    if months_col not in patients or lost_col not in patients:
        return np.array([]), np.array([])
    frame = patients[[months_col, lost_col]].dropna()
    return frame[months_col].to_numpy(dtype=float), frame[lost_col].to_numpy(dtype=bool)


def at_risk(times: np.ndarray, at: float) -> int:
    """Patients whose time is ≥ ``at`` (the contract's ``at_risk_<t>m`` definition)."""
    return int(np.sum(times >= at - 1e-9))


def km_figure(patients: pd.DataFrame) -> Figure | None:
    """Kaplan–Meier curves of the three patency definitions with 95 % CI bands and a number-at-risk table.

    Returns ``None`` when no patient has a patency time. The CI bands are lifelines' (exponential Greenwood,
    i.e. log(-log) transformed); the numbers at risk count patients whose time is ≥ the tick, as the
    ``at_risk_<t>m`` statistics of the MeasureReports.
    """
    from lifelines import KaplanMeierFitter

    data = {d: _patency_data(patients, d) for d in PATENCY_COLOURS}
    if all(len(t) == 0 for t, _ in data.values()):
        return None
    max_time = max((float(t.max()) for t, _ in data.values() if len(t)), default=0.0)
    x_max = max(12.0, math.ceil(max_time / 6.0) * 6.0)
    ticks = [t for t in range(0, int(x_max) + 1, 6 if x_max <= 48 else 12)]
    with figure_style():
        fig = Figure(figsize=(9.0, 6.4))
        ax = fig.add_axes((0.1, 0.36, 0.86, 0.58))
        table_ax = fig.add_axes((0.1, 0.04, 0.86, 0.2))
        for definition, (times, lost) in data.items():
            if len(times) == 0:
                continue
            kmf = KaplanMeierFitter(label=PATENCY_LABELS[definition])
            kmf.fit(times, event_observed=lost)
            kmf.plot_survival_function(
                ax=ax,
                ci_show=True,
                ci_alpha=0.12,
                show_censors=True,
                censor_styles={"marker": "|", "ms": 7, "mew": 1.2},
                color=PATENCY_COLOURS[definition],
                linewidth=1.8,
            )
        ax.set_xlim(0, x_max)
        ax.set_ylim(0, 1.04)
        ax.set_xticks(ticks)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlabel("Months since the index stenting procedure")
        ax.set_ylabel("Patent stents (Kaplan–Meier estimate)")
        ax.set_title("Stent patency (shaded: 95 % confidence interval; |: censored)", loc="left")
        ax.legend(loc="lower left")
        # number-at-risk table
        table_ax.set_xlim(0, x_max)
        table_ax.set_ylim(-0.5, len(data) - 0.5)
        table_ax.set_axis_off()
        table_ax.text(
            -0.11 * x_max, len(data) - 0.1, "Number at risk", fontsize=9.5, fontweight="bold", ha="left", va="bottom"
        )
        for row, (definition, (times, _)) in enumerate(data.items()):
            y = len(data) - 1 - row
            table_ax.text(
                -0.02 * x_max,
                y,
                PATENCY_LABELS[definition].replace(" patency", ""),
                ha="right",
                va="center",
                fontsize=9,
                color=PATENCY_COLOURS[definition],
                fontweight="bold",
            )
            for tick in ticks:
                table_ax.text(tick, y, str(at_risk(times, tick)), ha="center", va="center", fontsize=9)
    return fig


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
    """Baseline vs 3-month scores: one grey line per patient (complete pairs) and a box plot per time point."""
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
        fig = Figure(figsize=(4.3 * len(panels), 4.8))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel, frame in zip(axes, panels, pairs, strict=True):
            ax.set_title(panel.title, loc="left")
            ax.set_xticks([0, 1], ["Baseline", "3 months"])
            ax.set_xlim(-0.5, 1.5)
            ax.set_ylabel(panel.y_label)
            ax.grid(axis="x", visible=False)
            if len(frame) == 0:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes, color="#777")
                continue
            base = frame.iloc[:, 0].to_numpy()
            follow = frame.iloc[:, 1].to_numpy()
            for b, f in zip(base, follow, strict=True):
                colour = "#2f6db0" if f < b else ("#b0452f" if f > b else "#8a8f96")
                ax.plot([0.12, 0.88], [b, f], color=colour, alpha=0.35, linewidth=0.9, zorder=1)
            ax.boxplot(
                [base, follow],
                positions=[0, 1],
                widths=0.22,
                showfliers=True,
                patch_artist=True,
                boxprops={"facecolor": "#ffffff", "edgecolor": "#1d2630"},
                medianprops={"color": "#1d2630", "linewidth": 2.0},
                flierprops={"marker": "o", "markersize": 3},
                zorder=2,
            )
            if panel.annotation:
                ax.text(0.5, 1.0, panel.annotation, transform=ax.transAxes, ha="center", va="bottom", fontsize=9)
            ax.set_title(panel.title + "\n", loc="left")
        fig.text(
            0.5,
            -0.02,
            "One line per patient with both scores (blue: improved, red: worsened, grey: unchanged)",
            ha="center",
            fontsize=8.5,
            color="#444",
        )
        fig.subplots_adjust(wspace=0.3)
    return fig


# --- forest plot ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForestRow:
    """One coefficient: label, estimate and 95 % CI (``None`` when not available)."""

    label: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None


def forest_figure(models: Mapping[str, Sequence[ForestRow]]) -> Figure | None:
    """Regression coefficients (β, 95 % CI) per model; a vertical line marks no effect (β = 0)."""
    drawable = {title: [r for r in rows if r.estimate is not None] for title, rows in models.items()}
    drawable = {k: v for k, v in drawable.items() if v}
    if not drawable:
        return None
    height = 1.2 + 0.45 * max(len(v) for v in drawable.values())
    with figure_style():
        fig = Figure(figsize=(4.6 * len(drawable), height))
        axes = fig.subplots(1, len(drawable), squeeze=False)[0]
        for ax, (title, rows) in zip(axes, drawable.items(), strict=True):
            ys = np.arange(len(rows))[::-1]
            for y, r in zip(ys, rows, strict=True):
                if r.ci_low is not None and r.ci_high is not None:
                    ax.plot([r.ci_low, r.ci_high], [y, y], color="#2f6db0", linewidth=2.0)
                ax.plot([r.estimate], [y], marker="s", color="#1d2630", markersize=6)
            ax.axvline(0.0, color="#b0452f", linewidth=1.0, linestyle="--")
            ax.set_yticks(ys, [r.label for r in rows])
            ax.set_ylim(-0.7, len(rows) - 0.3)
            ax.set_title(title, loc="left")
            ax.set_xlabel("β (95 % CI), points of gain per unit")
            ax.grid(axis="y", visible=False)
        fig.subplots_adjust(wspace=0.9)
    return fig
