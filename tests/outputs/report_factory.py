"""Factories of the report tests (tests/outputs/test_report.py, test_report_browser.py): a hand-written 20-patient
cohort (:func:`make_cohort`) and outcomes built by hand (:func:`make_outcomes`) with distinctive values, so every
assertion names a number the report must show; :func:`text_of` reads a page as its reader would."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd

from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome, AnalysisResult, Statistic
from fhir_pts.cohort.model import Cohort
from fhir_pts.outputs.report import RunInfo
from fhir_pts.problems import Problem
from fhir_pts.testing import patients_frame

#: (sex, age, segments, below inguinal, technical success, baseline V, 3-month V, baseline CIVIQ, 3-month CIVIQ,
#:  primary months, primary lost, assisted months, assisted lost, secondary months, secondary lost)
ROWS: list[tuple] = [
    ("female", 34, 2, False, True, 14, 5, 57.0, 30.0, 18.1, False, 18.1, False, 18.1, False),
    ("female", 52, 3, True, True, 19, 9, 72.0, 50.0, 6.2, True, 20.0, False, 20.0, False),
    ("male", 61, 1, False, True, 10, 2, 39.0, 24.0, 34.4, False, 34.4, False, 34.4, False),
    ("female", 22, 2, False, True, 16, 4, 66.0, 28.0, 9.7, True, 9.7, True, 30.1, False),
    ("male", 86, 4, True, True, 21, 12, 80.0, 60.0, 3.0, True, 3.0, True, 3.0, True),
    ("female", 45, 2, False, True, 12, 3, 45.0, 26.0, 25.3, False, 25.3, False, 25.3, False),
    ("female", 38, 3, True, True, 15, 6, 60.0, 33.0, 12.0, True, 40.2, False, 40.2, False),
    ("male", 57, 2, False, True, 9, 2, 35.0, 22.0, 15.5, False, 15.5, False, 15.5, False),
    ("female", 29, 1, False, True, 13, 5, 52.0, 31.0, 28.0, False, 28.0, False, 28.0, False),
    ("female", 48, 2, False, False, 18, 14, 70.0, 66.0, 0.0, True, 0.0, True, 0.0, True),
    ("male", 66, 3, True, True, 17, 8, 68.0, 44.0, 7.4, True, 7.4, True, 19.9, False),
    ("female", 41, 2, False, True, 11, 3, 48.0, 27.0, 36.2, False, 36.2, False, 36.2, False),
    ("female", 33, 2, False, True, 14, None, 55.0, None, 10.2, False, 10.2, False, 10.2, False),
    ("male", 72, 3, True, True, 20, 10, 75.0, 52.0, 22.8, True, 22.8, True, 22.8, True),
    ("female", 27, 1, False, True, None, None, None, None, 4.1, False, 4.1, False, 4.1, False),
    ("female", 55, 2, False, None, 8, 2, 40.0, 25.0, 31.0, False, 31.0, False, 31.0, False),
    ("male", 63, 2, False, True, 12, 4, 47.0, 29.0, 13.3, False, 13.3, False, 13.3, False),
    ("female", 36, None, None, True, 16, 6, 62.0, 35.0, 16.8, False, 16.8, False, 16.8, False),
    ("female", 50, 3, True, True, 19, 7, 71.0, 39.0, 26.6, True, 26.6, False, 26.6, False),
    ("male", 44, 2, False, True, 10, 3, 42.0, 24.0, 8.8, False, 8.8, False, 8.8, False),
]
PATIENT_IDS = [f"pat-{i:04d}" for i in range(1, len(ROWS) + 1)]


def villalta_class_of(score: int | None) -> str | None:
    if score is None:
        return None
    return "severe" if score >= 15 else "moderate" if score >= 10 else "mild" if score >= 5 else "none"


def make_patients(rows: list[tuple] = ROWS) -> pd.DataFrame:
    """A patients frame with every cohort column at its dtype, filled from ``rows``."""
    records = []
    for pid, r in zip(PATIENT_IDS, rows, strict=False):
        sex, age, segs, below, success, bv, fv, bc, fc, pm, pl, am, al, sm, sl = r
        records.append(
            {
                "patient_id": pid,
                "sex": sex,
                "age": age,
                "index_date": "2015-03-01",
                "stented_segments": segs,
                "below_inguinal_ligament": below,
                "technical_success": success,
                "major_complication": 0,
                "primary_patency_months": pm,
                "primary_patency_lost": pl,
                "primary_assisted_patency_months": am,
                "primary_assisted_patency_lost": al,
                "secondary_patency_months": sm,
                "secondary_patency_lost": sl,
                "baseline_villalta": bv,
                "baseline_villalta_class": villalta_class_of(bv),
                "followup_villalta": fv,
                "followup_villalta_class": villalta_class_of(fv),
                "villalta_gain": None if bv is None or fv is None else bv - fv,
                "baseline_civiq20": bc,
                "baseline_civiq20_gis": None if bc is None else (bc - 20) / 80 * 100,
                "followup_civiq20": fc,
                "civiq20_gain": None if bc is None or fc is None else bc - fc,
            }
        )
    return patients_frame(records)


def make_cohort(rows: list[tuple] = ROWS, problems: list[Problem] | None = None) -> Cohort:
    """The 20-patient cohort, with a few problems and flow counts."""
    if problems is None:
        problems = [
            Problem("Observation", "obs-1", "valueQuantity", "value outside 0-33", patient_id=PATIENT_IDS[0]),
            Problem("Observation", "obs-2", "valueQuantity", "value outside 0-33", patient_id=PATIENT_IDS[1]),
            Problem("Procedure", "proc-9", "status", "status not completed"),
            Problem(
                "QuestionnaireResponse",
                "qr-7",
                "item",
                f"ulcer item missing for {PATIENT_IDS[2]}, taken as no ulcer",
                severity="warning",
                patient_id=PATIENT_IDS[2],
            ),
        ]
    return Cohort(
        patients=make_patients(rows),
        problems=problems,
        flow={"patients_in_data": len(rows) + 3, "with_index_procedure": len(rows)},
    )


def info(measure: str, title: str | None = None) -> AnalysisInfo:
    return AnalysisInfo(id=measure, title=title or measure, description=f"The {measure} analysis.")


def outcome(measure: str, *stats: Statistic, title: str | None = None, curves: dict | None = None) -> AnalysisOutcome:
    result = AnalysisResult(list(stats), curves=curves or {})
    return AnalysisOutcome(info(measure, title), plugin="fhir_pts.builtin", result=result)


def km_curves(months_index: int) -> dict:
    """The Kaplan–Meier curve of one patency definition of ROWS (columns ``months_index`` and the next), as the
    patency analysis computes it."""
    from fhir_pts.analyses.stats import kaplan_meier

    rows = [r for r in ROWS if r[months_index] is not None]
    return {"kaplan-meier": kaplan_meier([r[months_index] for r in rows], [r[months_index + 1] for r in rows]).curve()}


def km_stats(km12: float, events: int) -> list[Statistic]:
    return [
        Statistic("patients", 20),
        Statistic("events", events),
        Statistic("patent_at_last_follow_up", 20 - events),
        Statistic("proportion_at_last_follow_up", (20 - events) / 20),
        Statistic("km_6m", 0.9, 0.8, 0.97, n=20),
        Statistic("km_12m", km12, km12 - 0.2, km12 + 0.05, n=20),
        Statistic("km_24m", 0.6123, 0.35, 0.8, n=20),
        Statistic("km_36m", None, n=20),
        Statistic("at_risk_6m", 16),
        Statistic("at_risk_12m", 11),
        Statistic("at_risk_24m", 6),
        Statistic("at_risk_36m", 1),
    ]


def score_stats(bm: float, bq1: float, bq3: float, fm: float, fq1: float, fq3: float, v: float, p: float) -> list:
    return [
        Statistic("n_pairs", 18),
        Statistic("baseline_median", bm),
        Statistic("baseline_q1", bq1),
        Statistic("baseline_q3", bq3),
        Statistic("followup_median", fm),
        Statistic("followup_q1", fq1),
        Statistic("followup_q3", fq3),
        Statistic("gain_mean", 8.61, 6.42, 10.8),
        Statistic("wilcoxon", v, p_value=p, n=18),
        Statistic("gain_hodges_lehmann", 8.5, 6.5, 11.0),
    ]


def regression_stats(n: int) -> list[Statistic]:
    return [
        Statistic("n", n),
        Statistic("r_squared", 0.734),
        Statistic("coef:intercept", -3.25, -7.8, 1.3, 0.16),
        Statistic("coef:baseline_villalta", 0.512, 0.31, 0.71, 0.00002),
        Statistic("coef:baseline_civiq20", 0.137, 0.07, 0.2, 0.0004),
        Statistic("coef:age", 0.115, 0.04, 0.19, 0.0021),
        Statistic("coef:stented_segments", 3.31, 0.97, 5.65, 0.006),
    ]


def make_outcomes() -> list[AnalysisOutcome]:
    """One outcome per contract measure (values chosen to be recognisable), plus a third-party measure."""
    return [
        outcome("cohort", Statistic("patients", 20), Statistic("female", 13), Statistic("male", 7)),
        outcome(
            "technical-success",
            Statistic("numerator", 18),
            Statistic("denominator", 19),
            Statistic("proportion", 18 / 19, 0.7397, 0.9987),
        ),
        outcome(
            "major-complications",
            Statistic("numerator", 0),
            Statistic("denominator", 20),
            Statistic("proportion", 0.0, 0.0, 0.1684),
        ),
        outcome(
            "imaging-follow-up",
            Statistic("median_months", 18.1),
            Statistic("q1_months", 9.7),
            Statistic("q3_months", 34.4),
            Statistic("reverse_km_median_months", 25.3),
        ),
        outcome("primary-patency", *km_stats(0.7321, 7), curves=km_curves(9)),
        outcome("primary-assisted-patency", *km_stats(0.8123, 4), curves=km_curves(11)),
        outcome("secondary-patency", *km_stats(0.8771, 2), curves=km_curves(13)),
        outcome("villalta", *score_stats(14, 10, 19, 5, 2, 9, 171.0, 0.0000076)),
        outcome("civiq20", *score_stats(57, 39, 72, 30, 24, 50, 153.0, 0.000031)),
        outcome("villalta-gain-regression", *regression_stats(17)),
        outcome("civiq20-gain-regression", *regression_stats(16)),
        outcome(
            "vcss", Statistic("vcss_median", 7.25, n=15), Statistic("vcss_change", -3.5, p_value=0.0123), title="VCSS"
        ),
    ]


def make_run_info(inputs: list[tuple[str, str]] | None = None) -> RunInfo:
    return RunInfo(
        inputs=inputs if inputs is not None else [("data/bundle-a.json", "ab" * 32)],
        parameters={"baseline_window": [-90, 0], "followup_window": [60, 150], "analyses": "all"},
        versions={"fhir-pts": "0.1.0", "python": "3.11.2", "lifelines": "0.30.3"},
        started=datetime(2026, 11, 25, 9, 30, 0, tzinfo=UTC),
        command="fhir-pts run data --out out",
    )


def text_of(html: str) -> str:
    """The visible text (tags removed, entities unescaped) so assertions read like the page."""
    import html as html_lib

    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))
