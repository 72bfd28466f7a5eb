"""Tests of the class-shift plugin: hand-built cohorts, hand-computed counts and intervals, and discovery."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from fhir_pts_class_shift import CLASS_SHIFT, CLASSES, class_shift
from fhir_pts_class_shift import plugin as plugin_module

from fhir_pts.cohort.model import Cohort
from fhir_pts.host import FhirPtsHost
from fhir_pts.plugin_manager import get_plugin_manager, list_analyses
from fhir_pts.testing import cohort_from_rows


def cohort_of(*pairs: tuple[str | None, str | None]) -> Cohort:
    """A cohort whose patients have these (baseline class, 3-month class) pairs (None: missing)."""
    return cohort_from_rows({"baseline_villalta_class": b, "followup_villalta_class": f} for b, f in pairs)


def values(result) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
    return {s.name: s.value for s in result.statistics}


def test_counts_and_shift_cells_by_hand() -> None:
    result = class_shift(
        cohort_of(
            ("severe", "mild"),  # improved
            ("moderate", "moderate"),  # unchanged
            ("none", "mild"),  # worsened
            ("mild", "none"),  # improved
            (None, "mild"),  # unpaired
        )
    )
    v = values(result)
    assert (v["n_pairs"], v["improved"], v["unchanged"], v["worsened"], v["unpaired"]) == (4, 2, 1, 1, 1)
    assert v["proportion_improved"] == 0.5
    nonzero = {name: x for name, x in v.items() if name.startswith("shift_") and x}
    assert nonzero == {
        "shift_severe_to_mild": 1,
        "shift_moderate_to_moderate": 1,
        "shift_none_to_mild": 1,
        "shift_mild_to_none": 1,
    }
    assert len([n for n in v if n.startswith("shift_")]) == len(CLASSES) ** 2
    assert result.populations == {
        "initial-population": 5,
        "denominator": 5,
        "denominator-exclusion": 1,
        "numerator": 2,
    }
    assert result.score == "proportion_improved"
    assert result.notes == ["1 of 5 patients excluded: baseline or 3-month Villalta class missing"]
    assert result.statistic("unpaired").n == 5 and result.statistic("improved").n == 4


def test_clopper_pearson_interval_one_of_two() -> None:
    # x = 1, n = 2: Beta(1, 2) and Beta(2, 1) quantiles are 1 - sqrt(1 - q) and sqrt(q).
    s = class_shift(cohort_of(("severe", "mild"), ("mild", "mild"))).statistic("proportion_improved")
    assert s.value == 0.5
    assert s.ci_low == pytest.approx(1 - math.sqrt(0.975), abs=1e-12)
    assert s.ci_high == pytest.approx(math.sqrt(0.975), abs=1e-12)


def test_all_improved_upper_bound_is_exactly_one() -> None:
    # x = n = 3: lower bound (alpha / 2) ** (1 / n), upper bound exactly 1 (R's binom.test edge).
    s = class_shift(cohort_of(*[("moderate", "none")] * 3)).statistic("proportion_improved")
    assert s.value == 1.0
    assert s.ci_low == pytest.approx(0.025 ** (1 / 3), abs=1e-12)
    assert s.ci_high == 1.0


def test_unknown_labels_are_unpaired_and_case_is_ignored() -> None:
    v = values(class_shift(cohort_of(("Severe", " MILD"), ("grave", "mild"), ("mild", ""))))
    assert (v["n_pairs"], v["improved"], v["unpaired"]) == (1, 1, 2)


def test_empty_cohort_gives_every_row() -> None:
    result = class_shift(cohort_of())
    v = values(result)
    assert v["n_pairs"] == 0 and v["proportion_improved"] is None and v["unpaired"] == 0
    assert result.statistic("proportion_improved").ci_low is None
    assert result.notes == []


def test_missing_columns_count_as_missing_classes() -> None:
    v = values(class_shift(Cohort(patients=pd.DataFrame({"patient_id": ["a", "b"]}))))
    assert (v["n_pairs"], v["unpaired"]) == (0, 2)


def test_found_through_the_entry_point_group() -> None:
    listed = {info.id: plugin for info, plugin in list_analyses(get_plugin_manager())}
    assert listed[CLASS_SHIFT.id] == "class-shift"
    assert get_plugin_manager(block=["class-shift"]).get_plugin("class-shift") is None


def test_hook_answers_only_its_own_analysis() -> None:
    other = CLASS_SHIFT.__class__(id="cohort", title="t", description="d")
    assert plugin_module.fhir_pts_run_analysis(other, cohort_of(), {}) is None
    assert plugin_module.fhir_pts_describe_analyses() == [CLASS_SHIFT]


def test_measure_report_through_a_host_parses_as_r4() -> None:
    host = FhirPtsHost(allow=["class-shift"], min_cell_count=0)  # two patients: unmasked (the default masks 1..9)
    result = host.analyse(cohort_of(("severe", "none"), ("mild", "moderate")), analyses=[CLASS_SHIFT.id])
    (model,) = result.measure_report_models()
    assert model.status == "complete"
    assert model.measure == "https://fhir-pts.org/fhir/Measure/villalta-class-shift|0.1.0"
    counts = {p.code.coding[0].code: p.count for p in model.group[0].population}
    assert counts["numerator"] == 1 and counts["denominator-exclusion"] == 0
    assert float(model.group[0].measureScore.value) == 0.5
