"""Tests of the VCSS plugin: its Questionnaire, its scoring, its discovery, and a whole run checked by hand.

The end-to-end cohort: 8 patients with a VCSS at baseline (day -10) and 3 months (day 91) — one baseline sent as
a total Observation, the others as QuestionnaireResponses answered with the Questionnaire's codings — plus one
with a baseline only and one whose 3-month response misses an attribute. Expected numbers are computed by hand
(medians and R type-7 quartiles, Wilcoxon V and its exact p) and independently of fhir-pts (numpy least squares,
scipy's exact Wilcoxon and t distribution).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fhir_pts_vcss import VCSS, VCSS_ITEMS, score_vcss
from fhir_pts_vcss import plugin as plugin_module
from scipy import stats

from fhir_pts import cli, hookimpl
from fhir_pts.instruments import Answers, Unscorable, answer_values_of
from fhir_pts.plugin_manager import get_plugin_manager, list_analyses, list_instruments
from fhir_pts.synth import resources as r
from fhir_pts.synth.writer import write_ndjson

ANSWERS = "https://fhir-pts.org/plugins/vcss/CodeSystem/vcss-answer"

# --- the Questionnaire ------------------------------------------------------------------------------------------


def test_questionnaire_has_the_ten_attributes_with_scored_answer_options() -> None:
    questionnaire = VCSS.questionnaire
    assert questionnaire is not None and questionnaire["url"] == VCSS.questionnaires[0]
    assert [item["linkId"] for item in questionnaire["item"]] == list(VCSS_ITEMS)
    assert len(VCSS_ITEMS) == 10
    values = answer_values_of(questionnaire)
    for link_id in VCSS_ITEMS:
        assert values[link_id] == {(ANSWERS, "none"): 0, (ANSWERS, "mild"): 1, (ANSWERS, "moderate"): 2,
                                   (ANSWERS, "severe"): 3}  # fmt: skip
    assert VCSS.answer_map() == values


def test_shipped_resources_are_valid_fhir_r4() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    for resource in (VCSS.questionnaire, *VCSS.measures):
        assert resource is not None
        parsed = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert parsed.url == resource["url"]


def test_shipped_measures_name_the_two_measure_ids() -> None:
    urls = [m["url"] for m in VCSS.measures]
    assert urls == ["https://fhir-pts.org/fhir/Measure/vcss", "https://fhir-pts.org/fhir/Measure/vcss-gain-regression"]
    assert all(m["resourceType"] == "Measure" and m["version"] == "0.1.0" for m in VCSS.measures)
    assert "baseline_villalta" not in json.dumps(VCSS.measures)


# --- scoring ----------------------------------------------------------------------------------------------------


def items(*values: int) -> dict[str, int]:
    return dict(zip(VCSS_ITEMS, values, strict=True))


def test_total_is_the_sum_of_the_ten_attributes() -> None:
    assert score_vcss(Answers(items(3, 2, 1, 0, 3, 2, 1, 0, 3, 2))).total == 17
    assert score_vcss(Answers(items(*[0] * 10))).total == 0
    assert score_vcss(Answers(items(*[3] * 10))).total == 30


def test_a_missing_attribute_gives_no_score() -> None:
    answered = items(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    del answered["venous-edema"]
    with pytest.raises(Unscorable, match="venous-edema"):
        score_vcss(Answers(answered))


def test_without_active_ulcer_the_ulcer_duration_and_size_are_not_applicable() -> None:
    answered = items(2, 1, 1, 0, 0, 0, 0, 0, 0, 1)
    del answered["ulcer-duration"], answered["ulcer-size"]
    assert score_vcss(Answers(answered)).total == 5
    with_ulcer = {**answered, "ulcer-number": 1}
    with pytest.raises(Unscorable, match="ulcer-duration, ulcer-size"):
        score_vcss(Answers(with_ulcer))


def test_total_observation_in_range_only() -> None:
    assert score_vcss(Answers({}, total=12)).total == 12
    for bad in (-1, 31):
        with pytest.raises(Unscorable, match="VCSS total"):
            score_vcss(Answers({}, total=bad))


# --- discovery --------------------------------------------------------------------------------------------------


def test_found_through_the_entry_point_with_its_measures() -> None:
    pm = get_plugin_manager()
    assert ("vcss", "vcss") in [(i.id, name) for i, name in list_instruments(pm)]
    listed = {info.id: plugin for info, plugin in list_analyses(pm)}
    assert listed["vcss"] == "scores" and listed["vcss-gain-regression"] == "regression"


def test_cli_lists_vcss_and_its_gain_regression(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["analyses"]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert "vcss" in ids and "vcss-gain-regression" in ids


def test_a_broken_instrument_plugin_is_reported_by_name_and_the_others_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(plugin_module, "fhir_pts_instruments", hookimpl(boom))
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(plugin_module, name="vcss")  # registered after the patch: the hook is the broken function
    with pytest.warns(UserWarning, match=r"plugin 'vcss' left out.*RuntimeError: boom"):
        found = [i.id for i, _ in list_instruments(pm)]
    assert found == ["villalta", "civiq20"]


# --- a whole run ------------------------------------------------------------------------------------------------

BASELINE = [12, 9, 15, 7, 20, 11, 14, 8]
FOLLOWUP = [6, 7, 7, 4, 9, 12, 5, 3]
AGES = [45, 52, 38, 61, 47, 55, 33, 70]
SEGMENTS = [
    ["common_iliac_vein"],
    ["common_iliac_vein", "external_iliac_vein"],
    ["common_iliac_vein", "external_iliac_vein"],
    ["external_iliac_vein"],
    ["common_iliac_vein", "external_iliac_vein", "common_femoral_vein"],
    ["common_iliac_vein"],
    ["inferior_vena_cava", "common_iliac_vein"],
    ["common_iliac_vein"],
]


def spread(total: int) -> list[tuple[str, int]]:
    """Ten attribute scores (0-3) summing to ``total``, front-loaded, with an ulcer only when needed."""
    scores = [0] * 10
    left = total
    for k in [0, 1, 2, 3, 4, 5, 9, 6, 7, 8]:
        scores[k] = min(3, left)
        left -= scores[k]
    assert left == 0
    return list(zip(VCSS_ITEMS, scores, strict=True))


def cohort_resources() -> list[dict]:
    out: list[dict] = []
    data_cut = dt.date(2022, 6, 1)
    for k in range(10):
        pid = f"v{k}"
        day0 = dt.date(2021, 3, 1) + dt.timedelta(days=7 * k)
        age = AGES[k] if k < 8 else 50
        birth = dt.date(day0.year - age, day0.month, day0.day) - dt.timedelta(days=30)
        out.append(r.patient(pid, "female" if k % 2 else "male", birth, last_updated=data_cut))
        sites = r.body_sites(SEGMENTS[k] if k < 8 else ["common_iliac_vein"], "left")
        out.append(r.procedure(f"{pid}-stent", pid, day0, [r.cpt("37238")], sites=sites, outcome="snomed-success"))
        before, after = day0 - dt.timedelta(days=10), day0 + dt.timedelta(days=91)
        if k == 7:  # the baseline as a total Observation
            out.append(r.total_observation(VCSS, f"{pid}-total", pid, before, BASELINE[k]))
        elif k < 8:
            out.append(r.instrument_response(VCSS, f"{pid}-base", pid, before, spread(BASELINE[k])))
        if k < 8:
            out.append(r.instrument_response(VCSS, f"{pid}-3m", pid, after, spread(FOLLOWUP[k])))
        if k == 8:  # baseline only
            out.append(r.instrument_response(VCSS, f"{pid}-base", pid, before, spread(10)))
        if k == 9:  # baseline, and a 3-month response without the venous edema attribute: no 3-month score
            out.append(r.instrument_response(VCSS, f"{pid}-base", pid, before, spread(10)))
            out.append(r.instrument_response(VCSS, f"{pid}-3m", pid, after, spread(5)[:2] + spread(5)[3:]))
    return out


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("vcss")
    write_ndjson(cohort_resources(), base / "in")
    # a hand-made cohort of a few patients: measure-reports.json would mask counts of 1..9 (--min-cell-count 10)
    args = ["run", str(base / "in"), "--out", str(base / "out"), "-q", "--min-cell-count", "0"]
    assert cli.main(args) == 0
    return base / "out"


def rows(out: Path, measure: str) -> dict[str, dict[str, str]]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        return {row["statistic"]: row for row in csv.DictReader(handle) if row["measure"] == measure}


def number(text: str) -> float:
    return float(text) if text != "" else math.nan


def test_cohort_columns_follow_the_declaration(run_out: Path) -> None:
    with (run_out / "cohort.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        table = {row["patient_id"]: row for row in reader}
        header = reader.fieldnames or []
    assert header[-7:] == [
        "baseline_vcss_day", "baseline_vcss_resource_id", "baseline_vcss",
        "followup_vcss_day", "followup_vcss_resource_id", "followup_vcss", "vcss_gain",
    ]  # fmt: skip
    assert header.index("civiq20_gain") < header.index("baseline_vcss_day")
    for k in range(8):
        row = table[f"v{k}"]
        assert (row["baseline_vcss"], row["followup_vcss"]) == (str(BASELINE[k]), str(FOLLOWUP[k]))
        assert row["vcss_gain"] == str(BASELINE[k] - FOLLOWUP[k])
        assert (row["baseline_vcss_day"], row["followup_vcss_day"]) == ("-10", "91")
    assert table["v7"]["baseline_vcss_resource_id"] == "v7-total"
    assert table["v8"]["followup_vcss"] == "" and table["v9"]["followup_vcss"] == ""
    problems = (run_out / "problems.csv").read_text(encoding="utf-8")
    assert "v9-3m" in problems and "venous-edema" in problems


def test_paired_rows_against_hand_computed_values(run_out: Path) -> None:
    got = rows(run_out, "vcss")
    b, f = np.array(BASELINE, float), np.array(FOLLOWUP, float)
    d = b - f  # 6 2 8 3 11 -1 9 5: |d| all different, no zero -> exact test
    expected = {
        "n_pairs": 8,
        "baseline_median": 11.5,  # (11 + 12) / 2
        "baseline_q1": 8.75,  # R type 7: x[2] + 0.75 (x[3] - x[2]) = 8 + 0.75
        "baseline_q3": 14.25,  # 14 + 0.25 (15 - 14)
        "followup_median": 6.5,
        "followup_q1": 4.75,
        "followup_q3": 7.5,
        "gain_mean": 43 / 8,
        "wilcoxon": 35,  # V = sum of the ranks of the positive differences: 36 - rank(|-1|) = 35
        "excluded": 2,
    }
    for name, value in expected.items():
        assert number(got[name]["value"]) == pytest.approx(value), name
    # exact two-sided p: P(W- <= 1) = 2 / 2^8, doubled
    assert number(got["wilcoxon"]["p_value"]) == pytest.approx(4 / 256)
    assert stats.wilcoxon(d, method="exact").pvalue == pytest.approx(4 / 256)
    report = next(
        e["resource"] for e in json.loads((run_out / "measure-reports.json").read_text())["entry"]
        if e["resource"]["measure"].startswith("https://fhir-pts.org/fhir/Measure/vcss|")
    )  # fmt: skip
    assert report["status"] == "complete"
    populations = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    assert populations["measure-observation"] == 8 and populations["measure-population-exclusion"] == 2


def test_gain_regression_against_numpy_least_squares(run_out: Path) -> None:
    got = rows(run_out, "vcss-gain-regression")
    b = np.array(BASELINE, float)
    y = b - np.array(FOLLOWUP, float)
    x = np.column_stack([np.ones(8), b, np.array(AGES, float), np.array([len(s) for s in SEGMENTS], float)])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual_df = 8 - 4
    sigma2 = float(np.sum((y - x @ beta) ** 2)) / residual_df
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(x.T @ x)))
    t975 = stats.t.ppf(0.975, residual_df)
    assert number(got["n"]["value"]) == 8 and number(got["excluded"]["value"]) == 2
    for k, term in enumerate(("intercept", "baseline_vcss", "age", "stented_segments")):
        row = got[f"coef:{term}"]
        assert number(row["value"]) == pytest.approx(beta[k], rel=1e-9, abs=1e-9), term
        assert number(row["ci_low"]) == pytest.approx(beta[k] - t975 * se[k], rel=1e-9, abs=1e-9), term
        assert number(row["ci_high"]) == pytest.approx(beta[k] + t975 * se[k], rel=1e-9, abs=1e-9), term
        p = 2 * stats.t.sf(abs(beta[k] / se[k]), residual_df)
        assert number(row["p_value"]) == pytest.approx(p, rel=1e-7), term
    r2 = 1 - np.sum((y - x @ beta) ** 2) / np.sum((y - y.mean()) ** 2)
    assert number(got["r_squared"]["value"]) == pytest.approx(r2)
    entries = json.loads((run_out / "measure-reports.json").read_text())["entry"]
    measures = [e["resource"]["measure"] for e in entries]
    assert "https://fhir-pts.org/fhir/Measure/vcss-gain-regression|0.1.0" in measures


def test_the_report_shows_vcss(run_out: Path) -> None:
    html = (run_out / "report.html").read_text(encoding="utf-8")
    assert "Villalta, CIVIQ-20 and VCSS before and 3 months after stenting" in html
    assert "VCSS gain" in html and "Baseline VCSS (per point)" in html


def test_validate_explains_vcss_inclusions(run_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["validate", str(run_out.parent / "in"), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    text = json.dumps(report)
    assert "vcss-gain-regression" in text
    assert "3-month VCSS missing" in text and "venous-edema" in text  # v9's 3-month response


def test_synth_answers_the_vcss_questionnaire(tmp_path: Path) -> None:
    """``fhir-pts synth`` answers the installed instrument's Questionnaire, and a run reads it back."""
    synth = ["synth", "--patients", "60", "--seed", "3", "--noise", "0", "--out", str(tmp_path / "in"), "-q"]
    assert cli.main(synth) == 0
    responses = [
        json.loads(line) for line in (tmp_path / "in" / "QuestionnaireResponse.ndjson").read_text().splitlines()
    ]
    vcss = [q for q in responses if q["questionnaire"] == VCSS.questionnaires[0]]
    assert len(vcss) > 60
    codes = {a["valueCoding"]["code"] for q in vcss for i in q["item"] for a in i["answer"]}
    assert codes <= {"none", "mild", "moderate", "severe"}
    assert cli.main(["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-report", "-q"]) == 0
    assert int(rows(tmp_path / "out", "vcss")["n_pairs"]["value"]) > 20


def test_the_command_line_in_a_subprocess_lists_vcss() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "fhir_pts.cli", "analyses"], capture_output=True, text=True, check=True
    ).stdout
    assert any(line.split()[:1] == ["vcss-gain-regression"] for line in listed.splitlines())
