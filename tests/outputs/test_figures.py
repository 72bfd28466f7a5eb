"""Figures: deterministic bytes, nothing drawn from nothing, at-risk counts as the contract defines them."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.patches import FancyBboxPatch

from fhir_pts.cohort.model import empty_patients_frame
from fhir_pts.outputs import figures
from fhir_pts.outputs.figures import (
    FlowStage,
    ForestRow,
    ScorePanel,
    at_risk,
    atomic_write_bytes,
    flow_figure,
    forest_figure,
    km_figure,
    render,
    save_figure,
    scores_figure,
)


def patency_frame(months: list[float], lost: list[bool]) -> pd.DataFrame:
    """A patients frame whose three patency definitions share ``months`` / ``lost``."""
    frame = empty_patients_frame().reindex(range(len(months)))
    for definition in ("primary_patency", "primary_assisted_patency", "secondary_patency"):
        frame[f"{definition}_months"] = pd.array(months, dtype="Float64")
        frame[f"{definition}_lost"] = pd.array(lost, dtype="boolean")
    return frame


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
    frame = patency_frame([1.0, 5.5, 12.0, 20.0, 30.0], [False, True, False, True, False])
    first = render(km_figure(frame), "km")
    second = render(km_figure(frame), "km")
    assert first.svg == second.svg
    assert first.png == second.png
    assert b"<dc:date>" not in first.svg and b"Matplotlib v" not in first.svg
    assert b"Software" not in first.png[:400]
    ET.fromstring(first.svg)  # well-formed XML


def test_km_figure_needs_patency_times() -> None:
    assert km_figure(empty_patients_frame()) is None
    assert km_figure(pd.DataFrame({"patient_id": ["a"]})) is None
    assert km_figure(patency_frame([0.0], [True])) is not None


def test_km_figure_draws_three_curves_with_at_risk_rows() -> None:
    fig = km_figure(patency_frame([1.0, 5.5, 12.0, 20.0, 30.0], [False, True, False, True, False]))
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


def test_at_risk_counts_times_at_or_after_the_tick() -> None:
    times = np.array([0.0, 6.0, 6.0, 11.99, 12.0, 40.0])
    assert [at_risk(times, t) for t in (0, 6, 12, 24, 36, 48)] == [6, 5, 2, 1, 1, 0]


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
    assert "-0.50 (CI not available)" in texts


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


def test_save_figure_writes_svg_and_png(tmp_path: Path) -> None:
    saved = save_figure(flow_figure(STAGES), tmp_path / "figures", "flow")
    assert saved.svg_path == tmp_path / "figures" / "flow.svg"
    assert saved.svg_path.read_bytes() == saved.svg
    assert saved.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_atomic_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.svg"
    target.write_bytes(b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError("no space")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="no space"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg"]
