"""fhir_pts.testing: the one factory of patients frames and cohorts from rows (used by the suite and by plugins)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from fhir_pts.cohort.model import COHORT_COLUMNS, cohort_columns, empty_patients_frame
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.problems import Problem
from fhir_pts.testing import cohort_from_rows, patients_frame
from tests.instruments.toy import INSTRUMENTS, TOY


def test_no_rows_is_the_empty_patients_frame() -> None:
    pd.testing.assert_frame_equal(patients_frame([]), empty_patients_frame())


def test_every_column_at_its_dtype_and_unset_cells_missing() -> None:
    frame = patients_frame([{"patient_id": "a", "age": 52, "technical_success": True}, {"sex": "male"}])
    assert list(frame.columns) == [c.name for c in COHORT_COLUMNS]
    assert [str(t) for t in frame.dtypes] == [str(pd.Series([], dtype=c.dtype).dtype) for c in COHORT_COLUMNS]
    assert frame["patient_id"].tolist() == ["a", "p2"]  # a row without an id is p<position>
    assert frame.loc[0, "age"] == 52 and frame.loc[0, "technical_success"]
    assert pd.isna(frame.loc[1, "age"]) and pd.isna(frame.loc[1, "technical_success"])
    assert frame.loc[1, "sex"] == "male" and pd.isna(frame.loc[0, "sex"])
    assert int(frame.notna().sum().sum()) == 5  # nothing but the five given cells


def test_none_and_nan_are_missing() -> None:
    frame = patients_frame([{"baseline_villalta": float("nan"), "primary_patency_months": None, "age": pd.NA}])
    assert frame[["baseline_villalta", "primary_patency_months", "age"]].isna().all(axis=None)


def test_rows_may_be_any_iterable() -> None:
    frame = patients_frame({"age": age} for age in (40, 50, 60))
    assert frame["patient_id"].tolist() == ["p1", "p2", "p3"]
    assert frame["age"].tolist() == [40, 50, 60]


def test_a_misspelt_column_is_an_error_naming_it() -> None:
    with pytest.raises(KeyError, match=r"row 2 \(p2\): not cohort columns: \['agee'\]"):
        patients_frame([{"age": 1}, {"agee": 2}])


def test_an_instrument_adds_its_columns() -> None:
    frame = patients_frame([{"baseline_toy": 3, "toy_gain": 1}], instruments=INSTRUMENTS)
    assert list(frame.columns) == [c.name for c in cohort_columns(INSTRUMENTS)]
    assert (frame.loc[0, "baseline_toy"], frame.loc[0, "toy_gain"]) == (3, 1)
    with pytest.raises(KeyError, match="baseline_toy"):
        patients_frame([{"baseline_toy": 3}])  # not a column of the contract's cohort


def test_cohort_from_rows_passes_the_other_fields() -> None:
    problem = Problem("Procedure", "proc-1", "status", "status not completed")
    cohort = cohort_from_rows(
        [{"age": 70}, {"age": 30}], problems=[problem], period_start=dt.date(2015, 1, 1), period_end=None
    )
    assert len(cohort) == 2
    assert cohort.patients["age"].tolist() == [70, 30]
    assert cohort.problems == [problem]
    assert (cohort.period_start, cohort.period_end) == (dt.date(2015, 1, 1), None)
    assert cohort.instruments == BUILTIN_INSTRUMENTS


def test_cohort_from_rows_records_the_instruments() -> None:
    cohort = cohort_from_rows([{"followup_toy": 2}], instruments=list(INSTRUMENTS))
    assert cohort.instruments == (*BUILTIN_INSTRUMENTS, TOY)
    assert cohort.patients.loc[0, "followup_toy"] == 2
