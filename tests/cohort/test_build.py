"""build_cohort: index procedure rules (contract §1) and derivations (§2), one hand-computed case per rule."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_pts.adapters.facts import PatencyFindingFact, PatientFact, ProcedureFact, ScoreAssessmentFact
from fhir_pts.cohort.build import age_in_years, build_cohort
from fhir_pts.cohort.model import COHORT_COLUMNS, Cohort, TimePointWindows

from .factories import (
    DAY0,
    adverse_event,
    civiq_items,
    civiq_obs,
    civiq_qr,
    day,
    fact_set,
    finding,
    patient,
    reintervention,
    stenting,
    villalta_items,
    villalta_obs,
    villalta_qr,
)


def one_row(cohort: Cohort) -> pd.Series:
    assert len(cohort) == 1
    return cohort.patients.iloc[0]


def problems_about(cohort: Cohort, resource_id: str) -> list[str]:
    return [p.reason for p in cohort.problems if p.resource_id == resource_id]


# --- frame shape ------------------------------------------------------------------------------------------------


def test_frame_has_exactly_the_cohort_columns_in_order_and_dtype() -> None:
    cohort = build_cohort(fact_set([patient()], [stenting("s1")]))
    assert list(cohort.patients.columns) == [c.name for c in COHORT_COLUMNS]
    assert [str(t) for t in cohort.patients.dtypes] == [str(pd.Series([], dtype=c.dtype).dtype) for c in COHORT_COLUMNS]


def test_empty_facts_give_an_empty_typed_cohort() -> None:
    cohort = build_cohort(fact_set())
    assert len(cohort) == 0
    assert list(cohort.patients.columns) == [c.name for c in COHORT_COLUMNS]
    assert (cohort.period_start, cohort.period_end) == (None, None)
    assert cohort.flow["patients_in_data"] == 0 and cohort.flow["with_index_procedure"] == 0


def test_rows_follow_the_patients_order() -> None:
    facts = fact_set(
        [patient("b"), patient("a"), patient("c")], [stenting("s-a", "a"), stenting("s-c", "c"), stenting("s-b", "b")]
    )
    assert list(build_cohort(facts).patients["patient_id"]) == ["b", "a", "c"]


# --- index procedure --------------------------------------------------------------------------------------------


def test_earliest_stenting_sets_day_0_and_same_day_stentings_join_the_index() -> None:
    facts = fact_set(
        [patient()],
        [
            stenting("s2", on=0, segments=["femoral_vein"], outcome=None),
            stenting("s1", on=0, segments=["common_iliac_vein", "external_iliac_vein"]),
            stenting("s3", on=200, segments=["inferior_vena_cava"]),  # a later stenting: a reintervention
        ],
    )
    row = one_row(build_cohort(facts))
    assert row["index_date"] == DAY0.isoformat()
    assert row["index_procedure_ids"] == "s1;s2"
    assert row["stented_segments"] == 3
    assert row["stented_segment_names"] == "common_iliac_vein;external_iliac_vein;femoral_vein"
    assert row["below_inguinal_ligament"]
    assert row["reinterventions"] == 1


def test_day_0_is_the_earliest_stenting_whatever_the_input_order() -> None:
    facts = fact_set([patient()], [stenting("late", on=30), stenting("early", on=-5)])
    row = one_row(build_cohort(facts))
    assert row["index_date"] == day(-5).isoformat()
    assert row["index_procedure_ids"] == "early"
    assert row["reinterventions"] == 1  # "late" is 35 days after day 0


def test_both_sides_of_one_segment_count_once() -> None:
    # left and right common iliac: the adapters give the same side-free segment name for both
    facts = fact_set(
        [patient()],
        [stenting("right", segments=["common_iliac_vein"]), stenting("left", segments=["common_iliac_vein"])],
    )
    row = one_row(build_cohort(facts))
    assert row["stented_segments"] == 1
    assert not row["below_inguinal_ligament"]


def test_index_body_site_wins_over_the_index_days_icd10pcs_body_parts() -> None:
    # contract §1: "index Procedure.bodySite ..., else the body part of the index day's ICD-10-PCS codes":
    # the ICD-10-PCS femoral code of a same-day Procedure is not used when another has a bodySite.
    facts = fact_set(
        [patient()],
        [
            stenting("cpt", segments=["common_iliac_vein"], segments_source="bodySite"),
            stenting("pcs", segments=["femoral_vein"], segments_source="icd10pcs"),
        ],
    )
    row = one_row(build_cohort(facts))
    assert (row["stented_segments"], row["stented_segment_names"]) == (1, "common_iliac_vein")
    assert not row["below_inguinal_ligament"]
    only_icd = fact_set(
        [patient()],
        [
            stenting("a", segments=["common_iliac_vein"], segments_source="icd10pcs"),
            stenting("b", segments=["femoral_vein"], segments_source="icd10pcs"),
        ],
    )
    row = one_row(build_cohort(only_icd))
    assert (row["stented_segments"], row["below_inguinal_ligament"]) == (2, True)


def test_unrecognisable_segments_are_missing_not_zero() -> None:
    cohort = build_cohort(fact_set([patient()], [stenting("s1", segments=[])]))
    row = one_row(cohort)
    assert pd.isna(row["stented_segments"]) and pd.isna(row["below_inguinal_ligament"])
    assert any("stented segment" in reason for reason in problems_about(cohort, "s1"))
    assert cohort.flow["with_stented_segments"] == 0


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (("success", "failure"), False),
        (("failure", None), False),
        (("success", None), True),
        (("success", "success"), True),
        ((None, None), None),
    ],
)
def test_technical_success_over_index_day_procedures(
    outcomes: tuple[str | None, str | None], expected: bool | None
) -> None:
    facts = fact_set([patient()], [stenting("s1", outcome=outcomes[0]), stenting("s2", outcome=outcomes[1])])
    cohort = build_cohort(facts)
    value = one_row(cohort)["technical_success"]
    if expected is None:
        assert pd.isna(value)
        assert any("technical success unknown" in reason for reason in problems_about(cohort, "s1"))
        assert cohort.flow["technical_success_known"] == 0 and cohort.flow["technical_success_unknown"] == 1
    else:
        assert value == expected
        assert cohort.flow["technical_success_known"] == 1


def test_outcome_of_a_later_stenting_does_not_count_for_technical_success() -> None:
    facts = fact_set([patient()], [stenting("s1", outcome=None), stenting("s2", on=10, outcome="failure")])
    assert pd.isna(one_row(build_cohort(facts))["technical_success"])


def test_technical_failure_loses_patency_at_day_0() -> None:
    facts = fact_set([patient()], [stenting("s1", outcome="failure")], [finding("f1", on=100, status="patent")])
    row = one_row(build_cohort(facts))
    assert (row["primary_patency_days"], row["primary_patency_lost"]) == (0, True)
    assert (row["secondary_patency_days"], row["secondary_patency_lost"]) == (0, True)
    assert row["imaging_follow_up_days"] == 100


# --- major complication -----------------------------------------------------------------------------------------


def test_index_day_complication_counts() -> None:
    facts = fact_set([patient()], [stenting("s1"), stenting("s2", major_complication=True)])
    assert one_row(build_cohort(facts))["major_complication"] == 1


def test_serious_adverse_event_on_an_index_procedure_counts() -> None:
    facts = fact_set(
        [patient()], [stenting("s1"), stenting("s2")], adverse_events=[adverse_event("ae1", procedure_ids=("s2",))]
    )
    assert one_row(build_cohort(facts))["major_complication"] == 1


def test_complications_not_of_the_index_procedure_do_not_count() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1"), reintervention("r1", on=100, major_complication=True)],
        adverse_events=[
            adverse_event("ae-not-serious", procedure_ids=("s1",), serious=False),
            adverse_event("ae-reintervention", procedure_ids=("r1",)),
        ],
    )
    cohort = build_cohort(facts)
    assert one_row(cohort)["major_complication"] == 0
    assert any("not linked to an index procedure" in r for r in problems_about(cohort, "ae-reintervention"))


def test_no_complication_is_zero_not_missing() -> None:
    assert one_row(build_cohort(fact_set([patient()], [stenting("s1")])))["major_complication"] == 0


# --- reinterventions and findings -------------------------------------------------------------------------------


def test_only_procedures_after_day_0_are_reinterventions() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1"), reintervention("before", on=-3), reintervention("same-day", on=0), reintervention("r1", on=1)],
    )
    cohort = build_cohort(facts)
    assert one_row(cohort)["reinterventions"] == 1
    assert any("before the index stenting" in r for r in problems_about(cohort, "before"))
    assert any("on the index day" in r for r in problems_about(cohort, "same-day"))
    assert {p.severity for p in cohort.problems} == {"skipped"}  # neither record is used


def test_findings_on_or_before_day_0_are_not_follow_up() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        [
            finding("completion", on=0, status="occluded"),
            finding("old", on=-30, status="stenosis"),
            finding("f1", on=45),
        ],
    )
    cohort = build_cohort(facts)
    row = one_row(cohort)
    assert row["patency_findings"] == 1
    assert (row["primary_patency_days"], row["primary_patency_lost"]) == (45, False)
    for rid, n in (("completion", 0), ("old", -30)):
        reasons = problems_about(cohort, rid)
        assert reasons == [
            f"patency finding dated day '{n}': before the index procedure / completion imaging, not follow-up"
        ]


def test_patency_columns_hand_computed() -> None:
    # stenosis 90 (primary lost), reintervention 100 for stenosis, occluded 200 (assisted lost), successful
    # reintervention 210 (reopened), patent 400 → secondary censored at 400
    facts = fact_set(
        [patient()],
        [stenting("s1"), reintervention("r1", on=100), reintervention("r2", on=210)],
        [finding("f1", on=90, status="stenosis"), finding("f2", on=200, status="occluded"), finding("f3", on=400)],
    )
    row = one_row(build_cohort(facts))
    assert (row["primary_patency_days"], row["primary_patency_lost"]) == (90, True)
    assert (row["primary_assisted_patency_days"], row["primary_assisted_patency_lost"]) == (200, True)
    assert (row["secondary_patency_days"], row["secondary_patency_lost"]) == (400, False)
    assert row["primary_patency_months"] == pytest.approx(90 / 30.4375)
    assert row["secondary_patency_months"] == pytest.approx(400 / 30.4375)
    assert (row["imaging_follow_up_days"], row["imaging_follow_up_months"]) == (400, pytest.approx(400 / 30.4375))
    assert (row["patency_findings"], row["reinterventions"]) == (3, 2)


def test_reason_reference_to_an_occluded_finding_makes_an_occlusion() -> None:
    # failed reintervention at 150 references the occluded finding: occlusion never reopened
    facts = fact_set(
        [patient()],
        [stenting("s1"), reintervention("r1", on=150, outcome="failure", reason_observation_ids=("f-occ",))],
        [finding("f-occ", on=140, status="occluded"), finding("f2", on=300, status="occluded")],
    )
    row = one_row(build_cohort(facts))
    assert (row["secondary_patency_days"], row["secondary_patency_lost"]) == (140, True)


def test_reason_reference_to_an_occlusion_is_an_occlusion_on_the_reintervention_day() -> None:
    # the referenced finding is the day-0 completion imaging: not follow-up, but still gives the reason
    facts = fact_set(
        [patient()],
        [stenting("s1"), reintervention("r1", on=50, outcome="failure", reason_observation_ids=("f0",))],
        [finding("f0", on=0, status="occluded"), finding("f1", on=30), finding("f2", on=90)],
    )
    row = one_row(build_cohort(facts))
    assert (row["primary_assisted_patency_days"], row["primary_assisted_patency_lost"]) == (50, True)
    assert (row["secondary_patency_days"], row["secondary_patency_lost"]) == (50, True)


def test_unknown_reason_reference_falls_back_and_is_reported() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1"), reintervention("r1", on=50, outcome="failure", reason_observation_ids=("nowhere",))],
        [finding("f1", on=30, status="occluded"), finding("f2", on=90)],
    )
    cohort = build_cohort(facts)
    row = one_row(cohort)
    # latest finding before day 50 is occluded (day 30) → occlusion at 50, failed; the day-30 occlusion is
    # never reopened either → secondary lost at 30
    assert (row["secondary_patency_days"], row["secondary_patency_lost"]) == (30, True)
    assert any("reasonReference" in p.field for p in cohort.problems if p.resource_id == "r1")


def test_reason_code_occlusion_with_success_reopens() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1"), reintervention("r1", on=50, reason="occlusion")],
        [finding("f1", on=30), finding("f2", on=90)],
    )
    row = one_row(build_cohort(facts))
    assert (row["primary_patency_days"], row["primary_patency_lost"]) == (50, True)
    assert (row["primary_assisted_patency_days"], row["primary_assisted_patency_lost"]) == (50, True)
    assert (row["secondary_patency_days"], row["secondary_patency_lost"]) == (90, False)


def test_no_follow_up_imaging_is_censored_at_day_0() -> None:
    row = one_row(build_cohort(fact_set([patient()], [stenting("s1")])))
    for name in ("primary_patency", "primary_assisted_patency", "secondary_patency"):
        assert (row[f"{name}_days"], row[f"{name}_lost"]) == (0, False)
    assert row["imaging_follow_up_days"] == 0 and row["patency_findings"] == 0


# --- patients, age ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "on", "years"),
    [
        (dt.date(1970, 3, 10), dt.date(2020, 3, 9), 49),
        (dt.date(1970, 3, 10), dt.date(2020, 3, 10), 50),
        (dt.date(2000, 2, 29), dt.date(2021, 2, 28), 20),
        (dt.date(2000, 2, 29), dt.date(2021, 3, 1), 21),
        (dt.date(2000, 2, 29), dt.date(2024, 2, 29), 24),
        (dt.date(2020, 1, 15), dt.date(2020, 1, 15), 0),
    ],
)
def test_age_in_whole_years_birthday_exact(birth: dt.date, on: dt.date, years: int) -> None:
    assert age_in_years(birth, on) == years


def test_age_sex_and_birth_date_columns() -> None:
    # DAY0 = 2020-01-15; born 1970-01-16 → 49 (birthday tomorrow)
    row = one_row(build_cohort(fact_set([patient(gender="male", birth_date=dt.date(1970, 1, 16))], [stenting("s1")])))
    assert (row["age"], row["sex"], row["birth_date"]) == (49, "male", "1970-01-16")


def test_missing_birth_date_leaves_age_missing_and_is_counted() -> None:
    # the adapter reports a partial birthDate; a missing one is counted in the flow, not reported twice
    cohort = build_cohort(fact_set([patient("p1", gender=None, birth_date=None)], [stenting("s1")]))
    row = one_row(cohort)
    assert pd.isna(row["age"]) and pd.isna(row["sex"]) and pd.isna(row["birth_date"])
    assert cohort.flow["with_age"] == 0
    assert [p for p in cohort.problems if p.resource_type == "Patient"] == []


def test_birth_after_the_index_date_is_reported() -> None:
    cohort = build_cohort(fact_set([patient("p1", birth_date=day(3))], [stenting("s1")]))
    assert pd.isna(one_row(cohort)["age"])
    assert [(p.resource_id, p.field) for p in cohort.problems] == [("p1", "birthDate")]


def test_facts_of_a_missing_patient_are_reported_and_not_used() -> None:
    facts = fact_set(
        [patient("p1")],
        [stenting("s1"), stenting("ghost-s", pid="ghost")],
        [finding("ghost-f", pid="ghost", on=30)],
        [villalta_qr("ghost-v", pid="ghost")],
        [adverse_event("ghost-ae", pid="ghost", procedure_ids=("ghost-s",))],
    )
    cohort = build_cohort(facts)
    assert list(cohort.patients["patient_id"]) == ["p1"]
    ghost = [p for p in cohort.problems if p.patient_id == "ghost"]
    assert {p.resource_id for p in ghost} == {"ghost-s", "ghost-f", "ghost-v", "ghost-ae"}
    assert all(p.field == "subject" and "Patient/ghost" in p.reason and p.severity == "skipped" for p in ghost)
    assert cohort.flow["facts_without_patient"] == 4


def test_patients_without_index_procedure_are_counted_not_rows() -> None:
    facts = fact_set(
        [patient("p1"), patient("p2"), patient("p3")],
        [stenting("s1", "p1"), reintervention("r3", "p3", on=10)],
        assessments=[villalta_qr("v2", "p2")],
    )
    cohort = build_cohort(facts)
    assert list(cohort.patients["patient_id"]) == ["p1"]
    assert cohort.flow["patients_in_data"] == 3
    assert cohort.flow["with_index_procedure"] == 1
    assert cohort.flow["without_index_procedure"] == 2


# --- scores -----------------------------------------------------------------------------------------------------


def test_villalta_baseline_followup_gain_and_class() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        assessments=[
            villalta_qr("v-old", on=-60, items=villalta_items(3)),
            villalta_qr("v-base", on=-2, items=villalta_items([2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0]), ulcer=True),  # 14
            villalta_qr("v-far", on=140, items=villalta_items(0)),
            villalta_qr("v-3m", on=95, items=villalta_items([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]), ulcer=False),  # 6
        ],
    )
    cohort = build_cohort(facts)
    row = one_row(cohort)
    assert (row["baseline_villalta_day"], row["baseline_villalta_resource_id"]) == (-2, "v-base")
    assert (row["baseline_villalta"], row["baseline_villalta_class"], row["baseline_ulcer"]) == (14, "severe", True)
    assert (row["followup_villalta_day"], row["followup_villalta_resource_id"]) == (95, "v-3m")
    assert (row["followup_villalta"], row["followup_villalta_class"], row["followup_ulcer"]) == (6, "mild", False)
    assert row["villalta_gain"] == 8
    assert cohort.flow["villalta_pairs"] == 1
    assert cohort.period_end == day(95)


def test_unscorable_villalta_is_reported_and_not_eligible() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        assessments=[
            villalta_qr("v-ok", on=-30, items=villalta_items(1)),
            villalta_qr("v-incomplete", on=-1, items=villalta_items(2, drop=["redness"])),
            villalta_obs("v-bad-total", on=0, total=40),
        ],
    )
    cohort = build_cohort(facts)
    row = one_row(cohort)
    assert row["baseline_villalta_resource_id"] == "v-ok" and row["baseline_villalta"] == 11
    assert problems_about(cohort, "v-incomplete") == [
        "Villalta items missing 'redness': no total (all 11 items 0-3 are needed)"
    ]
    assert problems_about(cohort, "v-bad-total") == ["Villalta total: expected an integer 0-33, got 40"]


def test_out_of_range_answers_are_reported_not_fatal() -> None:
    bad_villalta = villalta_items(1)
    bad_villalta["pain"] = 7
    bad_civiq = civiq_items(2)
    bad_civiq["q4"] = 0
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        assessments=[villalta_qr("v", on=-1, items=bad_villalta), civiq_qr("c", on=-1, items=bad_civiq)],
    )
    cohort = build_cohort(facts)
    assert problems_about(cohort, "v") == ["Villalta item 'pain': expected an integer 0-3, got 7"]
    assert problems_about(cohort, "c") == ["CIVIQ-20 item 'q4': expected an integer 1-5, got 0"]
    assert cohort.flow["with_baseline_villalta"] == 0 and cohort.flow["with_baseline_civiq20"] == 0


def test_observation_total_is_classed_by_its_total_and_has_no_ulcer() -> None:
    facts = fact_set([patient()], [stenting("s1")], assessments=[villalta_obs("v", on=-5, total=12)])
    row = one_row(build_cohort(facts))
    assert (row["baseline_villalta"], row["baseline_villalta_class"]) == (12, "moderate")
    assert pd.isna(row["baseline_ulcer"])


def test_same_day_questionnaire_beats_observation_total() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        assessments=[villalta_qr("qr", on=-4, items=villalta_items(1)), villalta_obs("obs", on=-4, total=20)],
    )
    row = one_row(build_cohort(facts))
    assert (row["baseline_villalta_resource_id"], row["baseline_villalta"]) == ("qr", 11)


def test_civiq20_scores_imputation_and_gain() -> None:
    base_items = civiq_items(3, drop=["q1"])  # q1 imputed to 3 → raw 60
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        assessments=[civiq_qr("c-base", on=-7, items=base_items), civiq_obs("c-3m", on=91, total=35)],
    )
    cohort = build_cohort(facts)
    row = one_row(cohort)
    assert (row["baseline_civiq20"], row["baseline_civiq20_gis"], row["baseline_civiq20_imputed"]) == (60.0, 50.0, True)
    assert (row["baseline_civiq20_pain"], row["baseline_civiq20_physical"]) == (12.0, 12.0)
    assert (row["baseline_civiq20_social"], row["baseline_civiq20_psychological"]) == (9.0, 27.0)
    assert (row["followup_civiq20"], row["followup_civiq20_gis"]) == (35.0, 18.75)
    assert pd.isna(row["followup_civiq20_pain"]) and pd.isna(row["followup_civiq20_imputed"])  # total only
    assert row["civiq20_gain"] == 25.0
    assert cohort.flow["civiq20_pairs"] == 1
    imputed = [p for p in cohort.problems if p.resource_id == "c-base"]
    assert len(imputed) == 1 and imputed[0].severity == "warning" and "q1" in imputed[0].reason


def test_civiq20_with_three_missing_items_is_not_eligible() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        assessments=[
            civiq_qr("c-ok", on=80, items=civiq_items(2)),
            civiq_qr("c-bad", on=91, items=civiq_items(2, drop=["q1", "q2", "q3"])),
        ],
    )
    cohort = build_cohort(facts)
    row = one_row(cohort)
    assert (row["followup_civiq20_resource_id"], row["followup_civiq20"]) == ("c-ok", 40.0)
    assert row["followup_civiq20_imputed"] == False  # noqa: E712 - a complete QuestionnaireResponse
    assert pd.isna(row["civiq20_gain"])
    assert problems_about(cohort, "c-bad")[0].startswith("CIVIQ-20: 3 items missing 'q1, q2, q3': no score")


def test_score_windows_are_a_parameter() -> None:
    facts = fact_set(
        [patient()],
        [stenting("s1")],
        assessments=[
            villalta_qr("v-base", on=-100, items=villalta_items(2)),
            villalta_qr("v-6m", on=180, items=villalta_items(1)),
        ],
    )
    assert pd.isna(one_row(build_cohort(facts))["villalta_gain"])
    windows = TimePointWindows(baseline_start=-120, followup_target=182, followup_start=150, followup_end=210)
    cohort = build_cohort(facts, windows)
    assert one_row(cohort)["villalta_gain"] == 11
    assert cohort.windows == windows


def test_no_pair_no_gain() -> None:
    facts = fact_set([patient()], [stenting("s1")], assessments=[villalta_qr("v", on=-1), civiq_qr("c", on=100)])
    cohort = build_cohort(facts)
    row = one_row(cohort)
    assert pd.isna(row["villalta_gain"]) and pd.isna(row["civiq20_gain"])
    assert (cohort.flow["with_baseline_villalta"], cohort.flow["with_followup_villalta"]) == (1, 0)
    assert (cohort.flow["with_baseline_civiq20"], cohort.flow["with_followup_civiq20"]) == (0, 1)


# --- period, problems -------------------------------------------------------------------------------------------


def test_period_runs_from_earliest_index_to_latest_date_used() -> None:
    facts = fact_set(
        [patient("p1"), patient("p2")],
        [stenting("s1", "p1", on=0), stenting("s2", "p2", on=-40), reintervention("r1", "p1", on=500)],
        [finding("f1", "p2", on=300), finding("f0", "p1", on=-400)],  # f0: not used
        [villalta_qr("v-unused", "p1", on=900)],  # outside both windows: not used
    )
    cohort = build_cohort(facts)
    assert cohort.period_start == day(-40)
    assert cohort.period_end == day(500)


def test_every_problem_names_resource_patient_field_and_reason() -> None:
    facts = fact_set(
        [patient("p1", birth_date=None)],
        [stenting("s1", outcome=None, segments=[]), reintervention("r0", on=0), stenting("ghost-s", pid="ghost")],
        [finding("f0", on=0)],
        [villalta_qr("v", items={}), civiq_qr("c", items={})],
        [adverse_event("ae", procedure_ids=("other",))],
    )
    cohort = build_cohort(facts)
    assert len(cohort.problems) == 8
    for problem in cohort.problems:
        assert problem.resource_type and problem.resource_id and problem.patient_id and problem.field and problem.reason


# --- properties over random fact sets ---------------------------------------------------------------------------

_statuses = st.sampled_from(["patent", "stenosis", "occluded"])


@st.composite
def random_patient_facts(draw: st.DrawFn, pid: str) -> list[object]:
    out: list[object] = [
        patient(pid, birth_date=draw(st.sampled_from([None, dt.date(1960, 2, 29), dt.date(1985, 7, 1)])))
    ]
    n_index = draw(st.integers(0, 2))
    out += [
        stenting(
            f"{pid}-s{k}", pid, on=draw(st.integers(-2, 2)), outcome=draw(st.sampled_from(["success", "failure", None]))
        )
        for k in range(n_index)
    ]
    out += [
        reintervention(
            f"{pid}-r{k}",
            pid,
            on=draw(st.integers(-5, 400)),
            outcome=draw(st.sampled_from(["success", "failure", None])),
            reason=draw(st.sampled_from([None, "stenosis", "occlusion"])),
        )
        for k in range(draw(st.integers(0, 2)))
    ]
    out += [
        finding(f"{pid}-f{k}", pid, on=draw(st.integers(-5, 400)), status=draw(_statuses))
        for k in range(draw(st.integers(0, 4)))
    ]
    out += [
        villalta_qr(
            f"{pid}-v{k}",
            pid,
            on=draw(st.integers(-100, 160)),
            items=villalta_items(draw(st.lists(st.integers(0, 3), min_size=11, max_size=11))),
        )
        for k in range(draw(st.integers(0, 3)))
    ]
    out += [
        civiq_obs(f"{pid}-c{k}", pid, on=draw(st.integers(-100, 160)), total=draw(st.integers(20, 100)))
        for k in range(draw(st.integers(0, 3)))
    ]
    return out


@given(
    st.lists(st.integers(0, 10_000), min_size=0, max_size=6, unique=True).flatmap(
        lambda ids: st.tuples(*(random_patient_facts(f"p{i}") for i in ids))
    )
)
@settings(max_examples=60, deadline=None)
def test_random_fact_sets_give_consistent_rows(per_patient: tuple[list[object], ...]) -> None:
    flat = [fact for facts in per_patient for fact in facts]
    facts = fact_set(
        [f for f in flat if isinstance(f, PatientFact)],
        [f for f in flat if isinstance(f, ProcedureFact)],
        [f for f in flat if isinstance(f, PatencyFindingFact)],
        [f for f in flat if isinstance(f, ScoreAssessmentFact)],
    )
    cohort = build_cohort(facts)
    frame = cohort.patients
    assert list(frame.columns) == [c.name for c in COHORT_COLUMNS]
    with_index = {f.patient_id for f in facts.procedures if f.is_stenting}
    assert list(frame["patient_id"]) == [pid for pid in facts.patients if pid in with_index]
    assert cohort.flow["with_index_procedure"] + cohort.flow["without_index_procedure"] == len(facts.patients)
    for row in frame.itertuples(index=False):
        losses = [
            row.primary_patency_days if row.primary_patency_lost else float("inf"),
            row.primary_assisted_patency_days if row.primary_assisted_patency_lost else float("inf"),
            row.secondary_patency_days if row.secondary_patency_lost else float("inf"),
        ]
        assert losses == sorted(losses)
        if row.technical_success is False:
            assert losses == [0, 0, 0]
        if not pd.isna(row.villalta_gain):
            assert row.villalta_gain == row.baseline_villalta - row.followup_villalta
            assert -90 <= row.baseline_villalta_day <= 0 and 60 <= row.followup_villalta_day <= 150
        if not pd.isna(row.civiq20_gain):
            assert row.civiq20_gain == row.baseline_civiq20 - row.followup_civiq20
        assert cohort.period_start <= dt.date.fromisoformat(row.index_date) <= cohort.period_end  # type: ignore[operator]
