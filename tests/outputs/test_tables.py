"""results.csv / cohort.csv / problems.csv."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts.cohort.model import COLUMN_NAMES
from fhir_pts.outputs import tables
from fhir_pts.outputs.writer import OUTPUT_FILES, write_outputs
from fhir_pts.problems import PROBLEM_COLUMNS, Problem
from tests.outputs.outcome_factory import all_kinds, cohort, cohort_outcome


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (float("nan"), ""),
        (3, "3"),
        (42.0, "42"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (2 / 3, "0.6666666666666666"),
        (1.234567890123e-08, "1.234567890123e-08"),
        (2.0**60, "1.152921504606847e+18"),
        (float("inf"), "inf"),
    ],
)
def test_format_number(value: float | None, text: str) -> None:
    assert tables.format_number(value) == text


def test_format_number_round_trips_at_full_precision() -> None:
    for x in (1 / 7, 47.30952380952381, 0.9761904761904762, 3.3e-05 / 7):
        text = tables.format_number(x)
        assert float(text) == x
        digits = text.lower().split("e")[0].replace("-", "").replace(".", "").lstrip("0")
        assert len(digits) >= 12


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_round_trips_through_the_csv_text(x: float) -> None:
    text = tables.format_number(x)
    assert float(text) == x
    assert "," not in text and " " not in text


def test_results_csv_columns_and_empty_cells() -> None:
    rows = read_csv(tables.results_csv_bytes(all_kinds()))
    assert list(rows[0]) == ["measure", "statistic", "value", "ci_low", "ci_high", "p_value", "n"]
    by_key = {(r["measure"], r["statistic"]): r for r in rows}
    assert by_key[("cohort", "age_mean")] == {
        "measure": "cohort", "statistic": "age_mean", "value": "0.3333333333333333", "ci_low": "", "ci_high": "",
        "p_value": "", "n": "3",
    }  # fmt: skip
    prop = by_key[("technical-success", "proportion")]
    assert (prop["value"], prop["ci_low"], prop["ci_high"], prop["n"]) == (repr(41 / 42), "0.8743", "0.9994", "42")
    assert by_key[("villalta", "wilcoxon")]["p_value"] == "1.234567890123e-08"
    assert by_key[("primary-patency", "km_12m")]["value"] == ""
    assert not [r for r in rows if r["measure"] == "civiq20"]  # the failed analysis has no rows
    # order: analyses in order, statistics in order
    assert [r["statistic"] for r in rows[:2]] == ["patients", "age_mean"]


def _counts_only() -> list:
    outcome = cohort_outcome()
    outcome.result.statistics[:] = [s for s in outcome.result.statistics if s.name == "patients"]
    return [outcome]


@pytest.mark.parametrize("outcomes", [all_kinds(), _counts_only()], ids=["all kinds", "integers only"])
def test_results_frame_is_the_file_as_pandas_reads_it(outcomes: list) -> None:
    """The host's ``results`` are built from the rows, not by parsing the CSV bytes back: the same frame — values,
    dtypes (an all-integer column stays int64, as read_csv makes it) and empty cells — as reading the file."""
    import pandas as pd

    parsed = pd.read_csv(io.BytesIO(tables.results_csv_bytes(outcomes)), keep_default_na=False, na_values=[""],
                         dtype={"measure": "string", "statistic": "string", "n": "Int64"})  # fmt: skip
    built = tables.results_frame(outcomes)
    pd.testing.assert_frame_equal(built, parsed, check_exact=True)
    assert built["value"].dtype == ("float64" if len(outcomes) > 1 else "int64")


def test_cohort_csv_iso_dates_and_empty_cells() -> None:
    c = cohort(
        {"patient_id": "a", "sex": "female", "index_date": "2014-02-03", "age": 47, "technical_success": True,
         "baseline_civiq20": 57.25},
        {"patient_id": "b"},
    )  # fmt: skip
    rows = read_csv(tables.cohort_csv_bytes(c))
    assert list(rows[0]) == list(COLUMN_NAMES)
    assert rows[0]["index_date"] == "2014-02-03"
    assert (rows[0]["age"], rows[0]["technical_success"], rows[0]["baseline_civiq20"]) == ("47", "true", "57.25")
    assert rows[1]["patient_id"] == "b"
    assert all(v == "" for k, v in rows[1].items() if k != "patient_id")


def test_cohort_csv_extra_columns_after_the_contract_ones() -> None:
    import pandas as pd

    c = cohort({"patient_id": "a"}, {"patient_id": "b"})
    c.patients["site_visit"] = pd.to_datetime(["2014-02-03", None])
    c.patients["score_note"] = pd.Series(["x, y", None], dtype="string")
    rows = read_csv(tables.cohort_csv_bytes(c))
    assert list(rows[0])[-2:] == ["site_visit", "score_note"]
    assert (rows[0]["site_visit"], rows[1]["site_visit"]) == ("2014-02-03", "")
    assert (rows[0]["score_note"], rows[1]["score_note"]) == ("x, y", "")


def test_problems_csv() -> None:
    problems = [
        Problem("Observation", "o1", "status", "status 'preliminary' is not final", patient_id="p1", file="x.json",
                line=3),
        Problem("Patient", None, "birthDate", 'missing, "age" unknown', severity="warning"),
    ]  # fmt: skip
    rows = read_csv(tables.problems_csv_bytes(problems))
    assert list(rows[0]) == list(PROBLEM_COLUMNS)
    assert rows[0]["line"] == "3" and rows[0]["severity"] == "skipped"
    assert rows[1]["resource_id"] == "" and rows[1]["reason"] == 'missing, "age" unknown'


def test_write_outputs_writes_all_four(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    written = write_outputs(out, cohort({"patient_id": "p"}), all_kinds())
    assert sorted(written) == sorted(OUTPUT_FILES)
    assert all(p.parent == out and p.stat().st_size > 0 for p in written.values())
    assert sorted(os.listdir(out)) == sorted(OUTPUT_FILES)  # no temporary file left






def test_write_outputs_failure_keeps_previous_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_outputs(tmp_path, cohort({"patient_id": "p"}), [cohort_outcome()])
    before = {name: (tmp_path / name).read_bytes() for name in OUTPUT_FILES}

    def broken(*args: object, **kwargs: object) -> bytes:
        raise OSError("no space left on device")

    import fhir_pts.outputs.writer as writer

    monkeypatch.setattr(writer, "problems_csv_bytes", broken)
    with pytest.raises(OSError):
        write_outputs(tmp_path, cohort({"patient_id": "q"}), [])
    assert {name: (tmp_path / name).read_bytes() for name in OUTPUT_FILES} == before
    assert sorted(os.listdir(tmp_path)) == sorted(OUTPUT_FILES)
