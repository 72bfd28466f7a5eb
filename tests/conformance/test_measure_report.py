"""check_measure_report on hand-built MeasureReports: a conformant one, then each rule violated once.

The DEQM invariants are FHIRPath (fhirpathpy, a dependency), in one place: conformance.deqm_problems.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fhir_pts import conformance
from fhir_pts.codes import EXTENSION_BASE, MEASURE_BASE, MEASURE_POPULATION

Json = dict[str, Any]
DEQM_SCORING = "http://hl7.org/fhir/uv/deqm/StructureDefinition/extension-measureScoring"
COUNT_QUANTITY = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MeasureReport.group.population.countQuantity"
SCORING_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-scoring"


def _population(code: str, count: int) -> Json:
    return {"code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}, "count": count}


def _statistic(**parts: Any) -> Json:
    types = {"name": "valueString", "unit": "valueCode", "sampleSize": "valueInteger"}
    return {
        "url": f"{EXTENSION_BASE}/statistic",
        "extension": [{"url": k, types.get(k, "valueDecimal"): v} for k, v in parts.items()],
    }


def _point(time: float, estimate: float, at_risk: int) -> Json:
    return {
        "url": "point",
        "extension": [
            {"url": "time", "valueDecimal": time},
            {"url": "estimate", "valueDecimal": estimate},
            {"url": "ciLow", "valueDecimal": max(0.0, estimate - 0.1)},
            {"url": "ciHigh", "valueDecimal": min(1.0, estimate + 0.05)},
            {"url": "atRisk", "valueInteger": at_risk},
        ],
    }


def good_report() -> Json:
    """Technical success 41/42, DEQM-valid, with our statistic extension (the shape of anchors §B.2)."""
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": f"{MEASURE_BASE}/technical-success|0.1.0",
        "date": "2026-11-25T12:00:00Z",
        "period": {"start": "2019-01-07", "end": "2021-06-30"},
        "improvementNotation": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", "code": "increase"}
            ]
        },
        "extension": [
            {
                "url": DEQM_SCORING,
                "valueCodeableConcept": {"coding": [{"system": SCORING_SYSTEM, "code": "proportion"}]},
            }
        ],
        "group": [
            {
                "extension": [
                    _statistic(name="numerator", value=41, sampleSize=42),
                    _statistic(name="denominator", value=42, sampleSize=42),
                    _statistic(
                        name="proportion",
                        value=0.976190476190476,
                        unit="1",
                        ciLow=0.874,
                        ciHigh=0.999,
                        ciLevel=0.95,
                        sampleSize=42,
                    ),
                ],
                "population": [
                    _population("initial-population", 42),
                    _population("denominator", 42),
                    _population("denominator-exclusion", 0),
                    _population("numerator", 41),
                ],
                "measureScore": {
                    "value": 0.976190476190476,
                    "unit": "1",
                    "system": "http://unitsofmeasure.org",
                    "code": "1",
                },
                "stratifier": [
                    {
                        "code": [{"text": "sex"}],
                        "stratum": [
                            {"value": {"text": "female"}, "population": [_population("numerator", 20)]},
                            {"value": {"text": "male"}, "population": [_population("numerator", 21)]},
                        ],
                    }
                ],
            }
        ],
    }


def good_patency_report() -> Json:
    """Primary patency with a Kaplan-Meier curve and a p-value-free statistic list."""
    report = good_report()
    report["measure"] = f"{MEASURE_BASE}/primary-patency|0.1.0"
    del report["extension"]
    group = report["group"][0]
    del group["stratifier"]
    group["extension"] = [
        _statistic(name="km_12m", value=0.8, ciLow=0.6, ciHigh=0.9, ciLevel=0.95, sampleSize=42, unit="1"),
        _statistic(name="patients", value=42),
        {
            "url": f"{EXTENSION_BASE}/survival-curve",
            "extension": [{"url": "name", "valueString": "kaplan-meier"}, _point(0.0, 1.0, 42), _point(3.2, 0.95, 40)],
        },
    ]
    return report


@pytest.mark.parametrize("make", [good_report, good_patency_report])
def test_good_reports_conform(make: Callable[[], Json]) -> None:
    assert conformance.check_measure_report(make()) == []


def _group(r: Json) -> Json:
    return r["group"][0]


def _set(path: Callable[[Json], Json], key: str, value: Any) -> Callable[[Json], None]:
    def mutate(r: Json) -> None:
        path(r)[key] = value

    return mutate


def _delete(path: Callable[[Json], Json], key: str) -> Callable[[Json], None]:
    def mutate(r: Json) -> None:
        del path(r)[key]

    return mutate


def _group_scoring_without_notation(r: Json) -> None:
    # A cohort measure (no root notation needed), whose group declares proportion scoring but no notation.
    r["measure"] = f"{MEASURE_BASE}/cohort|0.1.0"
    del r["extension"]
    del r["improvementNotation"]
    g = _group(r)
    g["extension"] = [
        {"url": DEQM_SCORING, "valueCodeableConcept": {"coding": [{"system": SCORING_SYSTEM, "code": "proportion"}]}}
    ]
    g["population"] = [_population("initial-population", 42)]
    del g["measureScore"]


def _scoring_on_root_and_group(r: Json) -> None:
    _group(r)["extension"].append(copy.deepcopy(r["extension"][0]))


def _stratifier_code_and_components(r: Json) -> None:
    stratum = _group(r)["stratifier"][0]["stratum"][0]
    stratum["component"] = [{"code": {"text": "sex"}, "value": {"text": "female"}}]


def _count_and_count_quantity(r: Json) -> None:
    _group(r)["population"][0]["extension"] = [{"url": COUNT_QUANTITY, "valueQuantity": {"value": 42}}]


def _stratum_population_without_count(r: Json) -> None:
    del _group(r)["stratifier"][0]["stratum"][0]["population"][0]["count"]


def _stat_without_name(r: Json) -> None:
    _group(r)["extension"][0]["extension"].pop(0)


def _stat_value_wrong_type(r: Json) -> None:
    _group(r)["extension"][0]["extension"][1] = {"url": "value", "valueString": "41"}


def _stat_unknown_part(r: Json) -> None:
    _group(r)["extension"][0]["extension"].append({"url": "stderr", "valueDecimal": 0.1})


def _undefined_pts_extension(r: Json) -> None:
    _group(r)["extension"].append({"url": f"{EXTENSION_BASE}/ci-lower", "valueDecimal": 0.8})


def _foreign_extension(r: Json) -> None:
    r["extension"].append({"url": "http://example.org/my-extension", "valueString": "x"})


def _population_not_in_measure(r: Json) -> None:
    _group(r)["population"].append(_population("measure-observation", 3))


def _curve_point_without_at_risk(r: Json) -> None:
    curve = _group(r)["extension"][2]
    curve["extension"][1]["extension"].pop()


CASES: list[tuple[str, Callable[[], Json], Callable[[Json], None], str]] = [
    ("deqm-0", good_report, _set(lambda r: r, "measure", f"{MEASURE_BASE}/technical-success"), "deqm-0"),
    ("deqm-1", good_report, _set(lambda r: r, "date", "2026-11"), "deqm-1"),
    ("deqm-2", good_report, _delete(lambda r: r, "improvementNotation"), "deqm-2"),
    ("deqm-3", good_report, _scoring_on_root_and_group, "deqm-3"),
    ("deqm-4", good_report, _group_scoring_without_notation, "deqm-4"),
    ("deqm-5", good_report, _delete(_group, "population"), "deqm-5"),
    ("deqm-6", good_report, _set(lambda r: _group(r)["measureScore"], "value", 97.6), "deqm-6"),
    ("deqm-7", good_report, _stratifier_code_and_components, "deqm-7"),
    ("deqm-8", good_report, _count_and_count_quantity, "deqm-8"),
    ("deqm-9", good_report, _stratum_population_without_count, "deqm-9"),
    ("status", good_report, _set(lambda r: r, "status", "pending"), "pts-profile"),
    ("type", good_report, _set(lambda r: r, "type", "individual"), "pts-profile"),
    ("version", good_report, _set(lambda r: r, "measure", f"{MEASURE_BASE}/technical-success|9.9.9"), "pts-measure"),
    ("unknown-measure", good_report, _set(lambda r: r, "measure", f"{MEASURE_BASE}/vcss|0.1.0"), "pts-measure"),
    (
        "notation",
        good_report,
        _set(lambda r: r["improvementNotation"]["coding"][0], "code", "decrease"),
        "pts-measure",
    ),
    ("population", good_report, _population_not_in_measure, "pts-measure"),
    ("stat-name", good_report, _stat_without_name, "pts-ext"),
    ("stat-type", good_report, _stat_value_wrong_type, "pts-ext"),
    ("stat-part", good_report, _stat_unknown_part, "pts-ext"),
    ("undefined-ext", good_report, _undefined_pts_extension, "pts-ext"),
    ("foreign-ext", good_report, _foreign_extension, "pts-ext"),
    ("curve-point", good_patency_report, _curve_point_without_at_risk, "pts-ext"),
    ("fhir-structure", good_report, _set(lambda r: _group(r)["population"][0], "count", "forty-two"), "fhir"),
]


@pytest.mark.parametrize(("make", "mutate", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_violation_is_reported_once(make: Callable[[], Json], mutate: Callable[[Json], None], rule: str) -> None:
    report = make()
    mutate(report)
    problems = conformance.check_measure_report(report)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{rule}:"), problems


def test_deqm_messages_name_the_group_and_the_value() -> None:
    report = good_report()
    _group(report)["measureScore"]["value"] = 97.6
    assert conformance.deqm_problems(report) == [
        "deqm-6: group[0]: a proportion measureScore must lie in 0..1 (it is 97.6)"
    ]
    del report["improvementNotation"]
    assert "deqm-2: improvementNotation is required for proportion scoring" in conformance.deqm_problems(report)


def test_error_report_is_held_to_deqm_0_and_1_only() -> None:
    report = {"resourceType": "MeasureReport", "status": "error", "type": "summary", "measure": "x", "date": "2026"}
    assert conformance.deqm_problems(report) == [
        "deqm-0: measure must be a versioned canonical (url|version)",
        "deqm-1: date must be present with at least day precision",
    ]
    report.update(measure=f"{MEASURE_BASE}/technical-success|0.1.0", date="2026-11-03")
    assert conformance.deqm_problems(report) == []


def test_not_a_measure_report() -> None:
    assert conformance.check_measure_report({"resourceType": "Measure"}) == [
        "fhir: not a MeasureReport (resourceType must be 'MeasureReport')"
    ]


def test_packaged_profile_is_the_one_named() -> None:
    profile = conformance.load_package()[conformance.MEASURE_REPORT_PROFILE]
    assert profile["type"] == "MeasureReport"
    assert {c["key"] for e in profile["differential"]["element"] for c in e.get("constraint", [])} == {"pts-mr-1"}
