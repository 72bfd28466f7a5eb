"""MeasureReports and the Bundle: R4 structure (fhir.resources R4B), DEQM invariants, project extensions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport

from fhir_pts.codes import EXTENSION_BASE, MEASURE_POPULATION
from fhir_pts.conformance import deqm_problems
from fhir_pts.outputs import measure_report as mr
from fhir_pts.outputs.writer import write_outputs
from tests.outputs.outcome_factory import (
    all_kinds,
    cohort,
    cohort_outcome,
    failed_outcome,
    proportion_outcome,
    scores_outcome,
    survival_outcome,
)

DATE = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
COUNT_QUANTITY = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MeasureReport.group.population.countQuantity"


def ext(element: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in element.get("extension", []) if e["url"] == url]


def parts(extension: dict[str, Any]) -> dict[str, Any]:
    """Sub-extensions of a complex extension: url -> value (the value[x] of each)."""
    out = {}
    for sub in extension["extension"]:
        (key,) = [k for k in sub if k.startswith("value")]
        out[sub["url"]] = sub[key]
    return out


def statistics_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {parts(e)["name"]: parts(e) for e in ext(report["group"][0], mr.EXT_STATISTIC)}


@pytest.mark.parametrize("outcome", all_kinds(), ids=lambda o: o.info.id)
def test_every_report_parses_as_r4_and_meets_deqm(outcome) -> None:  # type: ignore[no-untyped-def]
    report = mr.build_measure_report(outcome, cohort({"patient_id": "p"}), date=DATE)
    MeasureReport.model_validate(report)
    assert deqm_problems(report) == []
    assert report["type"] == "summary"
    assert report["measure"] == f"https://fhir-pts.org/fhir/Measure/{outcome.info.id}|0.1.0"
    assert report["date"] == "2024-05-06T07:08:09+00:00"
    assert report["period"] == {"start": "2012-03-05", "end": "2018-09-30"}
    assert report["text"]["status"] == "generated"
    assert f"analysis plugin <code>{outcome.plugin}</code>" in report["text"]["div"]


def test_proportion_report() -> None:
    report = mr.build_measure_report(proportion_outcome(), cohort(), date=DATE)
    assert report["status"] == "complete"
    assert report["improvementNotation"]["coding"][0]["code"] == "increase"
    [group] = report["group"]
    assert group["code"] == {"text": "technical-success"}
    pops = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
    assert pops == {"initial-population": 42, "denominator": 42, "denominator-exclusion": 0, "numerator": 41}
    assert all(p["code"]["coding"][0]["system"] == MEASURE_POPULATION for p in group["population"])
    assert group["measureScore"] == {"value": 41 / 42, "unit": "1", "system": "http://unitsofmeasure.org", "code": "1"}
    stats = statistics_of(report)
    assert stats["proportion"] == {
        "name": "proportion",
        "value": 41 / 42,
        "ciLow": 0.8743,
        "ciHigh": 0.9994,
        "ciLevel": 0.95,
        "sampleSize": 42,
        "unit": "1",
    }
    assert {"url": "unit", "valueCode": "1"} in ext(report["group"][0], mr.EXT_STATISTIC)[2]["extension"]  # fmt: skip
    assert stats["numerator"] == {"name": "numerator", "value": 41, "sampleSize": 42}
    assert "<ul><li>a note</li></ul>" in report["text"]["div"]
    scoring = ext(report, mr.EXT_SCORING)[0]["valueCodeableConcept"]["coding"][0]["code"]
    assert scoring == "proportion"


def test_p_value_and_missing_value_extensions() -> None:
    stats = statistics_of(mr.build_measure_report(scores_outcome(), cohort(), date=DATE))
    assert stats["wilcoxon"] == {"name": "wilcoxon", "value": 903, "pValue": 1.234567890123e-08, "sampleSize": 42}
    km12 = statistics_of(mr.build_measure_report(survival_outcome(), cohort(), date=DATE))["km_12m"]
    assert km12 == {"name": "km_12m", "sampleSize": 4, "unit": "1"}  # no value: left out, not 0


def test_survival_curve_extension() -> None:
    report = mr.build_measure_report(survival_outcome(), cohort(), date=DATE)
    [curve] = ext(report["group"][0], mr.EXT_SURVIVAL_CURVE)
    assert curve["url"] == f"{EXTENSION_BASE}/survival-curve"
    assert curve["extension"][0] == {"url": "name", "valueString": "kaplan-meier"}
    points = [parts(p) for p in curve["extension"][1:]]
    assert points == [
        {"time": 0, "estimate": 1, "ciLow": 1, "ciHigh": 1, "atRisk": 4},
        {"time": 2, "estimate": 0.75, "ciLow": 0.1941, "ciHigh": 0.9603, "atRisk": 4},
        {"time": 10, "estimate": 0.375, "atRisk": 1},
    ]
    assert report["group"][0]["measureScore"]["value"] == 0.5


def test_cohort_measure_has_no_score_and_no_improvement_notation() -> None:
    report = mr.build_measure_report(cohort_outcome(), cohort(), date=DATE)
    assert "measureScore" not in report["group"][0]
    assert "improvementNotation" not in report


def test_failed_analysis_is_an_error_report() -> None:
    report = mr.build_measure_report(failed_outcome(), cohort(), date=DATE)
    MeasureReport.model_validate(report)
    assert report["status"] == "error"
    assert "group" not in report
    assert "The analysis failed: scores: ValueError: boom" in report["text"]["div"]
    assert deqm_problems(report) == []


def test_narrative_is_escaped() -> None:
    outcome = failed_outcome()
    outcome.error = "x: KeyError: '<b>' & more"
    report = mr.build_measure_report(outcome, cohort(), date=DATE)
    MeasureReport.model_validate(report)
    assert "x: KeyError: &#x27;&lt;b&gt;&#x27; &amp; more" in report["text"]["div"]


def test_builtin_reports_conform_to_the_packaged_profile(tmp_path: Path) -> None:
    """End to end: the built-in analyses' reports pass the project's own conformance checker."""
    from fhir_pts.conformance import check_measure_report
    from fhir_pts.plugin_manager import get_plugin_manager, run_analyses

    rows = [
        {"patient_id": f"p{i}", "sex": "female", "age": 40 + i, "technical_success": True, "major_complication": 0,
         "imaging_follow_up_months": 3.0 + i, "primary_patency_months": 3.0 + i, "primary_patency_lost": i == 1,
         "primary_assisted_patency_months": 3.0 + i, "primary_assisted_patency_lost": False,
         "secondary_patency_months": 3.0 + i, "secondary_patency_lost": False, "baseline_villalta": 10 + i,
         "followup_villalta": 3, "baseline_civiq20": 50.0 + i, "followup_civiq20": 40.0, "villalta_gain": 7 + i,
         "civiq20_gain": 10.0 + i, "stented_segments": 1 + i % 2}
        for i in range(8)
    ]  # fmt: skip
    c = cohort(*rows)
    outcomes = run_analyses(get_plugin_manager(allow=["descriptive", "patency", "scores", "regression"]), c)
    assert all(o.ok for o in outcomes)
    bundle = mr.build_bundle(outcomes, c, date=DATE)
    for entry in bundle["entry"]:
        assert check_measure_report(entry["resource"]) == [], entry["resource"]["measure"]
        assert deqm_problems(entry["resource"]) == []


def test_empty_cohort_period_is_data_absent() -> None:
    report = mr.build_measure_report(cohort_outcome(), cohort(period=False), date=DATE)
    MeasureReport.model_validate(report)
    assert report["period"] == {
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]
    }


def test_default_date_is_now_to_the_second() -> None:
    report = mr.build_measure_report(cohort_outcome(), cohort())
    parsed = dt.datetime.fromisoformat(report["date"])
    assert parsed.tzinfo is not None and parsed.microsecond == 0


def test_bundle_collection_with_urn_uuids() -> None:
    bundle = mr.build_bundle(all_kinds(), cohort(), date=DATE)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    assert bundle["timestamp"] == "2024-05-06T07:08:09+00:00"
    assert len(bundle["entry"]) == 5
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
        assert len(entry["resource"]["id"]) == 36
    assert len({e["fullUrl"] for e in bundle["entry"]}) == 5
    assert [e["resource"]["status"] for e in bundle["entry"]] == ["complete"] * 4 + ["error"]


def test_measure_reports_json_file_parses(tmp_path: Path) -> None:
    written = write_outputs(tmp_path, cohort({"patient_id": "p"}), all_kinds(), date=DATE)
    bundle = json.loads(written["measure-reports.json"].read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        MeasureReport.model_validate(entry["resource"])
        assert deqm_problems(entry["resource"]) == []


# ---------------------------------------------------------------------------------- the DEQM checker itself


def good_report() -> dict[str, Any]:
    return mr.build_measure_report(proportion_outcome(), cohort(), date=DATE)


@pytest.mark.parametrize(
    ("change", "invariant"),
    [
        (lambda r: r.update(measure="https://fhir-pts.org/fhir/Measure/x"), "deqm-0"),
        (lambda r: r.update(date="2024-05"), "deqm-1"),
        (lambda r: r.pop("improvementNotation"), "deqm-2"),
        (lambda r: r["group"][0].update(extension=[*r["group"][0].get("extension", []), r["extension"][0]]), "deqm-3"),
        (lambda r: r["group"][0].pop("population"), "deqm-5"),
        (lambda r: r["group"][0]["measureScore"].update(value=97.6), "deqm-6"),
        (lambda r: r["group"][0]["stratifier"].__setitem__(0, {"code": [{"text": "sex"}], "stratum": [
            {"component": [{"code": {"text": "sex"}, "value": {"text": "female"}}]}]}), "deqm-7"),
        (lambda r: r["group"][0]["population"][0].update(
            extension=[{"url": COUNT_QUANTITY, "valueQuantity": {"value": 42}}]), "deqm-8"),
    ],
)  # fmt: skip
def test_deqm_checker_detects_each_violation(change, invariant: str) -> None:  # type: ignore[no-untyped-def]
    report = good_report()
    report["group"][0]["stratifier"] = [{"code": [{"text": "sex"}], "stratum": []}]
    assert deqm_problems(report) == []
    change(report)
    assert any(v.startswith(invariant) for v in deqm_problems(report)), deqm_problems(report)
