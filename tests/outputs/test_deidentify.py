"""De-identification as one run-wide option (issue #18 item 5): ``fhir-pts run --deidentify`` leaves no patient
id, resource id or birth date in cohort.csv, problems.csv or report.html, and the same numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from fhir_pts.cli import main
from fhir_pts.outputs.deidentify import KEY_ENV, Deidentifier, deidentify_cohort
from fhir_pts.problems import Problem

PSEUDONYM = re.compile(r"P-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fhir_pts.synth import synthesize

    folder = tmp_path_factory.mktemp("data")
    synthesize(folder / "cohort.json", patients=30, seed=3, fmt="bundle")
    odd = {"resourceType": "Patient", "id": "pat-secret-7", "gender": "female", "birthDate": "1850-03-04"}
    (folder / "odd.ndjson").write_text(json.dumps(odd) + "\n")
    return folder


@pytest.fixture(scope="module")
def plain(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain")
    assert main(["run", str(data), "--out", str(out), "--quiet"]) == 0
    return out


def run_deidentified(
    data: Path, out: Path, monkeypatch: pytest.MonkeyPatch, key: str | None = "k1", *extra: str
) -> Path:
    if key is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, key)
    assert main(["run", str(data), "--out", str(out), "--quiet", "--deidentify", *extra]) == 0
    return out


def test_no_id_and_no_birth_date_in_any_output(data: Path, plain: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    out = run_deidentified(data, tmp_path / "d", monkeypatch)
    cohort = pd.read_csv(plain / "cohort.csv", dtype=str)
    ids = set(cohort["patient_id"]) | {"pat-secret-7"}
    resource_ids = {r for v in cohort["index_procedure_ids"].dropna() for r in v.split(";")}
    birth_dates = set(cohort["birth_date"].dropna()) | {"1850-03-04"}
    assert "1850-03-04" in (plain / "problems.csv").read_text()  # the plain run shows it (the premise)
    for name in ("cohort.csv", "problems.csv", "report.html"):
        text = (out / name).read_text()
        leaked = [
            i for i in ids | resource_ids | birth_dates if re.search(rf"(?<![\w.-]){re.escape(i)}(?![\w-])", text)
        ]
        assert leaked == [], (name, leaked[:5])
    hidden = pd.read_csv(out / "cohort.csv", dtype=str)
    assert hidden["patient_id"].map(lambda v: bool(PSEUDONYM.fullmatch(v))).all()
    assert hidden["birth_date"].dropna().str.fullmatch(r"\d{4}").all()
    assert hidden["age"].equals(cohort["age"])
    problems = pd.read_csv(out / "problems.csv", dtype=str)
    assert problems["patient_id"].dropna().map(lambda v: bool(PSEUDONYM.fullmatch(v))).all()
    report = (out / "report.html").read_text()
    assert any(pid in report for pid in hidden["patient_id"])  # the report shows cohort.csv's pseudonyms
    assert (out / "results.csv").read_text() == (plain / "results.csv").read_text()


def test_the_key_makes_pseudonyms_stable(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def ids(name: str, key: str | None) -> pd.Series:
        out = run_deidentified(data, tmp_path / name, monkeypatch, key, "--no-report")
        return pd.read_csv(out / "cohort.csv", dtype=str)["patient_id"]

    a, b, c = ids("a", "k1"), ids("b", "k1"), ids("c", None)
    assert a.tolist() == b.tolist()
    assert not set(a) & set(c)  # a random key per run without FHIR_PTS_PSEUDONYM_KEY


def test_hash_patient_ids_is_the_same_option(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "k1")
    assert main(["run", str(data), "--out", str(tmp_path / "h"), "--quiet", "--hash-patient-ids", "--no-report"]) == 0
    a = run_deidentified(data, tmp_path / "d", monkeypatch, "k1", "--no-report")
    assert (tmp_path / "h" / "cohort.csv").read_text() == (a / "cohort.csv").read_text()


def test_free_text_ids_and_dates_are_replaced() -> None:
    from fhir_pts.cohort.model import Cohort, empty_patients_frame

    problem = Problem("Patient", "p.1", "birthDate", "implausible birth date: 1850-03-04 is before 1900",
                      "warning", patient_id="p.1", file="/data/p.1.ndjson")  # fmt: skip
    cohort = Cohort(patients=empty_patients_frame(), problems=[problem])
    (out,) = deidentify_cohort(cohort, Deidentifier(b"k")).problems
    assert PSEUDONYM.fullmatch(out.patient_id) and out.resource_id == out.patient_id
    assert "1850-03-04" not in out.reason and "1850-xx-xx" in out.reason
    assert out.file == f"/data/{out.patient_id}.ndjson"
    assert cohort.problems == [problem]  # unchanged
