"""Figures: deterministic bytes, nothing drawn from nothing, at-risk counts as the contract defines them."""

from __future__ import annotations

import io
import os
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.patches import FancyBboxPatch

from fhir_pts.analyses.stats import kaplan_meier
from fhir_pts.cohort.model import empty_patients_frame
from fhir_pts.outputs import figures
from fhir_pts.outputs.figures import (
    FlowStage,
    ForestRow,
    KmCurve,
    ScorePanel,
    at_risk_at,
    censored_times,
    flow_figure,
    forest_figure,
    km_figure,
    km_layout,
    scores_figure,
)
from fhir_pts.outputs.rendering import render, save_figure


def curves(months: list[float], lost: list[bool]) -> list[KmCurve]:
    """The three patency curves as the analyses compute them (here all three from the same times)."""
    points = kaplan_meier(months, lost).curve()
    return [
        KmCurve(label, colour, points)
        for label, colour in (("Primary patency", "#0072B2"), ("Primary-assisted patency", "#E69F00"),
                              ("Secondary patency", "#009E73"))
    ]  # fmt: skip


def score_frame(pairs: list[tuple[float | None, float | None]]) -> pd.DataFrame:
    frame = empty_patients_frame().reindex(range(len(pairs)))
    frame["baseline_villalta"] = pd.array([p[0] for p in pairs], dtype="Int64")
    frame["followup_villalta"] = pd.array([p[1] for p in pairs], dtype="Int64")
    return frame


VILLALTA = ScorePanel("Villalta", "baseline_villalta", "followup_villalta", "p < 0.0001")
STAGES = [
    FlowStage("Patients in the data", "23", ("No index procedure: 3",)),
    FlowStage("With an index procedure", "20", ("Technical failure 1",)),
    FlowStage("In the regression", "17", ("Missing age 3", "Missing stented segments 1")),
]


def test_render_is_byte_for_byte_deterministic() -> None:
    data = curves([1.0, 5.5, 12.0, 20.0, 30.0], [False, True, False, True, False])
    first = render(km_figure(data, min_at_risk=1)[0], "km")
    second = render(km_figure(data, min_at_risk=1)[0], "km")
    assert first.svg == second.svg and first.png == second.png and first.pdf == second.pdf
    assert b"<dc:date>" not in first.svg and b"Matplotlib v" not in first.svg
    assert b"Software" not in first.png[:400] and b"CreationDate" not in first.pdf
    ET.fromstring(first.svg)  # well-formed XML


def test_png_is_at_journal_resolution() -> None:
    from PIL import Image

    png = render(flow_figure(STAGES), "flow").png
    with Image.open(io.BytesIO(png)) as image:
        assert round(image.info["dpi"][0]) == 300


def test_km_figure_needs_a_curve() -> None:
    assert km_figure([]) is None
    assert km_figure([KmCurve("Primary patency", "#000000", [])]) is None
    assert km_figure(curves([0.0], [True]), min_at_risk=1) is not None


def test_km_figure_draws_the_analyses_curves_with_at_risk_rows_apart_from_the_labels() -> None:
    fig, layout = km_figure(curves([1.0, 5.5, 12.0, 20.0, 30.0], [False, True, False, True, False]), min_at_risk=1)
    ax, table = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Primary patency",
        "Primary-assisted patency",
        "Secondary patency",
    ]
    cells = [t.get_text() for t in table.texts]
    # ticks 0, 6, 12, 18, 24, 30: times >= tick -> 5, 3, 3, 2, 1, 1 in each of the three rows
    assert cells.count("5") == 3 and cells.count("2") == 3
    assert "Number at risk" in cells
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = [t for t in table.texts if t.get_text() in ("Primary", "Primary-assisted", "Secondary")]
    zeros = [t for t in table.texts if t.get_position()[0] == 0 and t.get_text().isdigit()]
    for label, number in zip(labels, zeros, strict=True):  # "Primary" ends left of "5" at month 0
        assert label.get_window_extent(renderer).x1 < number.get_window_extent(renderer).x0
    assert layout.stops == {"Primary patency": 30.0, "Primary-assisted patency": 30.0, "Secondary patency": 30.0}
    assert layout.ticks == (0, 6, 12, 18, 24, 30) and layout.at_risk["Primary patency"] == (5, 3, 3, 2, 1, 1)


def test_km_curve_stops_where_few_remain_at_risk() -> None:
    months = [float(m) for m in range(1, 41)]  # one patient leaves each month; events every fourth month
    lost = [m % 4 == 0 for m in range(1, 41)]
    fig, layout = km_figure(curves(months, lost), min_at_risk=10)
    assert layout.stops["Primary patency"] == 31.0  # at risk just before month 31: 10; month 32: 9
    line = fig.axes[0].get_lines()[0]
    assert max(line.get_xdata()) == 31.0
    assert fig.axes[0].get_xlim()[1] == 36  # ticks every 6 months up to the stop


def test_at_risk_row_is_the_analysis_number_at_risk() -> None:
    """The numbers under the plot are the analysis' own (``at_risk_<t>m``: time >= t), read off its curve."""
    months = [0.5, 3.0, 6.0, 6.0, 9.5, 12.0, 12.0, 18.0, 25.0, 31.0, 44.0, 50.0]
    fit = kaplan_meier(months, [i % 3 == 0 for i in range(len(months))])
    layout = km_layout([KmCurve("Primary patency", "#0072B2", fit.curve())], min_at_risk=1)
    assert layout is not None and layout.ticks == (0, 12, 24, 36, 48, 60)  # beyond 48 months: every 12
    assert layout.at_risk["Primary patency"] == tuple(fit.at_risk(t) for t in layout.ticks) == (12, 7, 4, 2, 1, 0)


def test_censoring_marks_and_at_risk_read_off_the_curve() -> None:
    points = kaplan_meier([0.0, 6.0, 6.0, 11.99, 12.0, 40.0], [False, True, False, False, True, False]).curve()
    assert [at_risk_at(points, t) for t in (0, 6, 12, 24, 36, 48)] == [6, 5, 2, 1, 1, 0]
    assert [t for t, _ in censored_times(points)] == [0.0, 6.0, 11.99, 40.0]


def test_scores_figure_uses_complete_pairs_only() -> None:
    assert scores_figure(score_frame([(10, None), (None, 4)]), [VILLALTA]) is None
    fig = scores_figure(score_frame([(10, 4), (14, 14), (8, 9), (None, 3)]), [VILLALTA])
    ax = fig.axes[0]
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert [seg[:, 1].tolist() for seg in lines.get_segments()] == [[10, 4], [14, 14], [8, 9]]
    colours = [to_hex(c) for c in lines.get_colors()]
    assert colours == ["#2f6db0", "#8a8f96", "#b0452f"]  # improved, unchanged, worsened
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Baseline", "3 months"]


def test_scores_figure_leaves_out_lines_of_a_large_cohort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "MAX_PAIR_LINES", 2)
    fig = scores_figure(score_frame([(10, 4), (14, 14), (8, 9)]), [VILLALTA])
    assert not [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert "3 pairs: patient lines not drawn" in [t.get_text() for t in fig.axes[0].texts]


def test_scores_figure_marks_an_empty_panel() -> None:
    civiq = ScorePanel("CIVIQ-20", "baseline_civiq20", "followup_civiq20")
    fig = scores_figure(score_frame([(10, 4)]), [VILLALTA, civiq])
    assert "not available" in [t.get_text() for t in fig.axes[1].texts]


def test_forest_figure_skips_missing_estimates() -> None:
    assert forest_figure({"Villalta gain": [ForestRow("Age", None, None, None)]}) is None
    fig = forest_figure(
        {
            "Villalta gain": [ForestRow("Age", 0.12, 0.04, 0.19), ForestRow("Segments", None, None, None)],
            "CIVIQ-20 gain": [ForestRow("Age", -0.5, None, None)],
        }
    )
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["Age"]
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert "−0.50 (CI not available)" in texts


def test_forest_never_prints_minus_zero() -> None:
    fig = forest_figure({"Villalta gain": [ForestRow("Age", -0.001, -0.004, 0.002)]})
    assert "0.00 (0.00 to 0.00)" in [t.get_text() for t in fig.axes[0].texts]


def test_flow_figure_one_box_per_stage_and_exclusion() -> None:
    fig = flow_figure(STAGES)
    boxes = [p for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 6
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for fragment in ("Patients in the data", "23", "Missing age 3", "Missing stented segments 1"):
        assert fragment in texts


def test_flow_side_boxes_do_not_overlap() -> None:
    stages = [
        FlowStage("A", "1", tuple(f"reason {i}" for i in range(3))),
        FlowStage("B", "1", tuple(f"long reason number {i}" for i in range(6))),
    ]
    fig = flow_figure(stages)
    side = [p for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch) and p.get_x() > 4]
    (a, b) = sorted(side, key=lambda p: -p.get_y())
    assert b.get_y() + b.get_height() < a.get_y()


def test_save_figure_writes_svg_png_and_pdf(tmp_path: Path) -> None:
    saved = save_figure(flow_figure(STAGES), tmp_path / "figures", "flow")
    assert saved.svg_path == tmp_path / "figures" / "flow.svg"
    assert saved.svg_path.read_bytes() == saved.svg
    assert saved.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved.pdf_path.read_bytes()[:5] == b"%PDF-"


def test_save_figures_renders_in_worker_processes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendered in forked workers or one after the other: the same files, in the order given."""
    from concurrent.futures import ProcessPoolExecutor

    from fhir_pts.outputs import rendering

    pools: list[int] = []

    class Pool(ProcessPoolExecutor):
        def __init__(self, workers: int, **kwargs: object) -> None:
            pools.append(workers)
            super().__init__(workers, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rendering, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(rendering, "_parallel_workers", lambda jobs: 1)  # as on a 2-core machine, one thread
    data = curves([1.0, 5.5, 12.0, 20.0, 30.0], [False, True, False, True, False])
    jobs = [("flow", flow_figure(STAGES)), ("km", km_figure(data, min_at_risk=1)[0]), ("flow2", flow_figure(STAGES))]
    done: list[str] = []
    saved = rendering.save_figures(jobs, tmp_path / "par", on_saved=done.append)
    assert [s.name for s in saved] == done == ["flow", "km", "flow2"] and pools == [1]  # 2 in the worker, 1 here
    serial = [render(fig, name) for name, fig in jobs]
    assert [(s.svg, s.png, s.pdf) for s in saved] == [(r.svg, r.png, r.pdf) for r in serial]
    assert sorted(p.name for p in (tmp_path / "par").iterdir()) == [
        "flow.pdf", "flow.png", "flow.svg", "flow2.pdf", "flow2.png", "flow2.svg", "km.pdf", "km.png", "km.svg"
    ]  # fmt: skip


def test_parallel_rendering_only_where_forking_is_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_pts.outputs import rendering

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert rendering._parallel_workers(4) == 1 and rendering._parallel_workers(1) == 0  # one worker + this process
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # a host's threads: fork is unsafe, render here
    assert rendering._parallel_workers(4) == 0


def test_a_failing_figure_fails_the_batch_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_pts.outputs import rendering

    monkeypatch.setattr(rendering, "_parallel_workers", lambda jobs: 2)  # the worker's error reaches the caller
    broken = flow_figure(STAGES)
    broken.axes[0].text(0, 0, "$\\notacommand$")  # mathtext that cannot be parsed: fails when drawn
    with pytest.raises(ValueError):
        rendering.save_figures([("flow", flow_figure(STAGES)), ("broken", broken)], tmp_path / "f")
    assert not (tmp_path / "f").exists()


def _killed_worker(index: int) -> None:
    os._exit(9)  # as a worker process killed (out of memory) while it renders


def test_a_worker_that_dies_leaves_the_figures_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead rendering worker breaks the pool: every figure is rendered here instead, the same bytes written."""
    from fhir_pts.outputs import rendering

    monkeypatch.setattr(rendering, "_parallel_workers", lambda jobs: 1)
    monkeypatch.setattr(rendering, "_render_pending", _killed_worker)  # inherited by the forked worker
    jobs = [("flow", flow_figure(STAGES)), ("flow2", flow_figure(STAGES)), ("flow3", flow_figure(STAGES))]
    saved = rendering.save_figures(jobs, tmp_path / "f")
    assert [(s.name, s.svg, s.png, s.pdf) for s in saved] == [
        (name, r.svg, r.png, r.pdf) for name, r in ((name, render(fig, name)) for name, fig in jobs)
    ]
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == sorted(
        f"{name}.{ext}" for name, _ in jobs for ext in ("svg", "png", "pdf")
    )


def test_a_system_that_cannot_fork_leaves_the_figures_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fork() failing (ENOMEM where memory is not overcommitted, EAGAIN at the process limit) is not a failed
    report: the figures are rendered here, the same bytes."""
    import errno

    from fhir_pts.outputs import rendering

    def no_fork() -> int:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(rendering, "_parallel_workers", lambda jobs: 1)
    monkeypatch.setattr(os, "fork", no_fork)
    jobs = [("flow", flow_figure(STAGES)), ("flow2", flow_figure(STAGES))]
    saved = rendering.save_figures(jobs, tmp_path / "f")
    assert [(s.name, s.svg) for s in saved] == [(name, render(fig, name).svg) for name, fig in jobs]
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == sorted(
        f"{name}.{ext}" for name, _ in jobs for ext in ("svg", "png", "pdf")
    )
