"""Small-cell suppression of a MeasureReport (fhir_pts.outputs.suppression), hand-built reports."""

from __future__ import annotations

from typing import Any

from fhir_pts.disclosure import masked
from fhir_pts.outputs.suppression import suppress_report

STAT = "https://fhir-pts.org/fhir/StructureDefinition/statistic"
CURVE = "https://fhir-pts.org/fhir/StructureDefinition/survival-curve"


def statistic(name: str, **parts: Any) -> dict[str, Any]:
    kinds = {"value": "valueDecimal", "ciLow": "valueDecimal", "ciHigh": "valueDecimal", "pValue": "valueDecimal",
             "sampleSize": "valueInteger", "unit": "valueCode"}  # fmt: skip
    return {"url": STAT, "extension": [{"url": "name", "valueString": name}]
            + [{"url": k, kinds[k]: v} for k, v in parts.items()]}  # fmt: skip


def point(at_risk: int) -> dict[str, Any]:
    return {"url": "point", "extension": [{"url": "time", "valueDecimal": 1}, {"url": "estimate", "valueDecimal": 1},
                                          {"url": "atRisk", "valueInteger": at_risk}]}  # fmt: skip


def population(code: str, count: int) -> dict[str, Any]:
    return {"code": {"coding": [{"code": code}]}, "count": count}


def names(group: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for ext in group["extension"]:
        if ext["url"] == STAT:
            parts = {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]}
            out[parts.pop("name")] = parts
    return out


def report() -> dict[str, Any]:
    return {
        "resourceType": "MeasureReport",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>'},
        "group": [
            {
                "population": [
                    population("denominator", 40),
                    population("numerator", 37),
                    population("denominator-exclusion", 0),
                ],
                "measureScore": {"value": 0.925},
                "extension": [
                    statistic("numerator", value=37, sampleSize=40),
                    statistic("events", value=3, sampleSize=40),
                    statistic("proportion", value=0.925, ciLow=0.8, ciHigh=0.98, sampleSize=40, unit="1"),
                    statistic("km_12m", value=0.9, ciLow=0.8, ciHigh=0.95, sampleSize=40, unit="1"),
                    statistic("at_risk_12m", value=20, sampleSize=40),
                    statistic("km_36m", value=0.7, ciLow=0.4, ciHigh=0.9, sampleSize=40, unit="1"),
                    statistic("at_risk_36m", value=4, sampleSize=40),
                    statistic("median", value=5.5, sampleSize=6, unit="{score}"),
                    statistic("wilcoxon", value=7, pValue=0.2, sampleSize=40),
                    statistic("age_max", value=89, sampleSize=40, unit="a"),
                    {"url": CURVE, "extension": [{"url": "name", "valueString": "km"}, point(40), point(12), point(9)]},
                ],
            }
        ],
    }


def test_counts_below_the_minimum_and_what_they_give_are_suppressed() -> None:
    original = report()
    out, hidden = suppress_report(original, 10)
    group = out["group"][0]
    stats = names(group)
    assert stats["numerator"] == {"value": 37, "sampleSize": 40}  # 37 >= 10: shown
    assert stats["events"] == {"sampleSize": 40}  # a count of 3: masked
    assert "value" not in stats["proportion"] and "ciLow" not in stats["proportion"]  # computed from a masked count
    assert stats["km_12m"]["value"] == 0.9  # 20 at risk: shown
    assert stats["at_risk_36m"] == {"sampleSize": 40} and stats["km_36m"] == {"sampleSize": 40, "unit": "1"}
    assert stats["median"] == {"unit": "{score}"}  # computed on 6 patients
    assert stats["wilcoxon"]["value"] == 7  # a test statistic with a p-value is not a count
    assert stats["age_max"] == {"sampleSize": 40, "unit": "a"}  # one patient's age
    assert group["measureScore"] == {"extension": [masked()]}
    assert [p.get("count") for p in group["population"]] == [40, 37, 0]  # zero names nobody
    curve = next(e for e in group["extension"] if e["url"] == CURVE)
    assert [p["extension"][2]["valueInteger"] for p in curve["extension"][1:]] == [40, 12]
    assert "events" in hidden and "1 survival-curve points" in hidden
    assert "Disclosure control" in out["text"]["div"] and out["text"]["div"].endswith("</div>")
    assert original == report()  # the input is not changed


def test_a_masked_population_count() -> None:
    rep = report()
    rep["group"][0]["population"][2]["count"] = 2
    group = suppress_report(rep, 10)[0]["group"][0]
    assert group["population"][2] == {"code": {"coding": [{"code": "denominator-exclusion"}]},
                                      "_count": {"extension": [masked()]}}  # fmt: skip


def test_min_cell_count_one_changes_nothing() -> None:
    out, hidden = suppress_report(report(), 1)
    assert out == report() and hidden == []
