"""fhir_pts.pipeline, the one way in (load_cohort -> analyse -> write_run), on a three-patient hospital built by hand.

The hospital (:func:`hospital`), day 0 = 2020-01-15 for both stented patients:

- ``pat1``: female, born 1970-05-06 (49 at day 0); stenting ``proc1``, technical success; patency findings
  ``patent`` on day 90 and ``stenosis`` on day 180, and one with a value no rule knows (``unclear``, skipped: a
  problem row); Villalta 11 (eleven items at 1, no ulcer) on day -5 and 0 on day 91.
- ``pat2``: male, born 1960-01-15 (60 on day 0); stenting ``proc2``, technical success; ``occluded`` on day 60;
  a serious AdverseEvent of ``proc2`` (a major complication).
- ``pat3``: a Patient with no stenting: counted in the data, not in the cohort.

Expected by hand (contract §2, docs/cohort.md): primary patency lost by both (stenosis day 180, occlusion day 60);
primary-assisted and secondary lost by pat2 only (day 60), pat1 censored at its last finding (day 180).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fhir_pts import codes, hookimpl
from fhir_pts.analyses.api import AnalysisInfo, AnalysisOutcome, AnalysisResult, Statistic
from fhir_pts.cohort.model import COLUMN_NAMES, Cohort
from fhir_pts.pipeline import (
    add_source_findings,
    analyse,
    cohort_from_resources,
    installed_instruments,
    load_cohort,
    write_run,
)
from fhir_pts.plugin_manager import get_plugin_manager
from fhir_pts.problems import Problem
from fhir_pts.synth.writer import write_bundle, write_json, write_ndjson
from fhir_pts.testing import cohort_from_rows
from tests.adapters.factories import adverse_event, concept_map, patency, patient, procedure, questionnaire_response
from tests.adapters.factories import villalta_items as villalta_answers
from tests.instruments.toy import ToyPlugin

SUCCESS = ((codes.SNOMED, "385669000"),)
LOCAL = "urn:oid:1.2.250.1.213.2.5"  # the hospital's own procedure codes, mapped by a ConceptMap
MONTH = codes.DAYS_PER_MONTH


def hospital(stenting: tuple[str, str] = (codes.ICD10PCS, "067C3DZ")) -> list[dict[str, Any]]:
    """The three patients of the module docstring; ``stenting`` codes both index procedures."""
    all_zero = {link_id: 0 for link_id in codes.VILLALTA_ITEMS}
    return [
        patient("pat1", "female", "1970-05-06"),
        procedure("proc1", "pat1", code=(stenting,), performed="2020-01-15T09:30:00+01:00", outcome=SUCCESS),
        patency("obs1-90", "patent", patient_id="pat1", effective="2020-04-14"),
        patency("obs1-180", "stenosis", patient_id="pat1", effective="2020-07-13"),
        patency("obs1-bad", "unclear", patient_id="pat1", effective="2020-05-01"),
        questionnaire_response("qr1-base", "pat1", authored="2020-01-10T08:00:00Z", items=villalta_answers()),
        questionnaire_response("qr1-3m", "pat1", authored="2020-04-15T08:00:00Z", items=villalta_answers(all_zero)),
        patient("pat2", "male", "1960-01-15"),
        procedure("proc2", "pat2", code=(stenting,), performed="2020-01-15", outcome=SUCCESS),
        patency("obs2-60", "occluded", patient_id="pat2", effective="2020-03-15"),
        adverse_event("ae2", "pat2", procedures=("Procedure/proc2",)),
        patient("pat3", "female", "1980-01-01"),
    ]


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return cohort_from_resources(hospital())


@pytest.fixture(scope="module")
def outcomes(cohort: Cohort) -> list[AnalysisOutcome]:
    return analyse(cohort)


def by_patient(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("patient_id").reset_index(drop=True)


def value(outcomes: list[AnalysisOutcome], measure: str, statistic: str) -> float | None:
    [outcome] = [o for o in outcomes if o.info.id == measure]
    assert outcome.result is not None, outcome.error
    return outcome.result.statistic(statistic).value


# ------------------------------------------------------------------------------------------- the cohort


def test_cohort_from_resources_keeps_the_stented_patients(cohort: Cohort) -> None:
    patients = by_patient(cohort.patients)
    assert list(cohort.patients.columns) == list(COLUMN_NAMES)
    assert patients["patient_id"].tolist() == ["pat1", "pat2"]
    assert patients["age"].tolist() == [49, 60]
    assert patients["index_date"].tolist() == ["2020-01-15", "2020-01-15"]
    assert patients["technical_success"].tolist() == [True, True]
    assert patients["major_complication"].tolist() == [0, 1]
    assert (cohort.flow["patients_in_data"], cohort.flow["with_index_procedure"]) == (3, 2)
    assert (str(cohort.period_start), str(cohort.period_end)) == ("2020-01-15", "2020-07-13")


def test_cohort_patency_and_scores_as_computed_by_hand(cohort: Cohort) -> None:
    p = by_patient(cohort.patients).set_index("patient_id")
    assert p.loc["pat1", "primary_patency_days"] == 180 and p.loc["pat1", "primary_patency_lost"]
    assert p.loc["pat2", "primary_patency_days"] == 60 and p.loc["pat2", "primary_patency_lost"]
    assert p.loc["pat1", "primary_patency_months"] == pytest.approx(180 / MONTH)
    for definition in ("primary_assisted_patency", "secondary_patency"):
        assert (p.loc["pat1", f"{definition}_days"], p.loc["pat1", f"{definition}_lost"]) == (180, False)
        assert (p.loc["pat2", f"{definition}_days"], p.loc["pat2", f"{definition}_lost"]) == (60, True)
    assert p.loc["pat1", "patency_findings"] == 2  # the unreadable finding is not counted
    assert (p.loc["pat1", "baseline_villalta"], p.loc["pat1", "followup_villalta"]) == (11, 0)
    assert (p.loc["pat1", "baseline_villalta_day"], p.loc["pat1", "followup_villalta_day"]) == (-5, 91)
    assert p.loc["pat1", "villalta_gain"] == 11
    assert pd.isna(p.loc["pat2", "baseline_villalta"]) and pd.isna(p.loc["pat1", "baseline_civiq20"])


def test_a_skipped_record_is_a_problem_row(cohort: Cohort) -> None:
    [problem] = cohort.problems
    assert (problem.resource_type, problem.resource_id) == ("Observation", "obs1-bad")
    assert problem.field == "valueCodeableConcept"
    assert (problem.patient_id, problem.severity) == ("pat1", "skipped")
    assert "unclear" in problem.reason


# ------------------------------------------------------------------------------------ every door, one answer


@pytest.mark.parametrize("form", ["bundle", "ndjson"])
def test_load_cohort_from_files_is_the_same_cohort(form: str, tmp_path: Path, cohort: Cohort) -> None:
    if form == "bundle":
        write_bundle(hospital(), tmp_path / "hospital.json")
    else:
        write_ndjson(hospital(), tmp_path)
    loaded = load_cohort([tmp_path])
    pd.testing.assert_frame_equal(by_patient(loaded.patients), by_patient(cohort.patients))
    assert [(p.resource_id, p.field) for p in loaded.problems] == [("obs1-bad", "valueCodeableConcept")]
    assert loaded.flow["patients_in_data"] == 3


def test_site_local_codes_mapped_by_a_concept_map_give_the_same_cohort(tmp_path: Path, cohort: Cohort) -> None:
    local = hospital(stenting=(LOCAL, "VSTENT-ILIAC"))
    assert cohort_from_resources(local).patients.empty  # unmapped, no procedure is a stenting: nobody is lost ...
    maps = concept_map(LOCAL, codes.ICD10PCS, [("VSTENT-ILIAC", "067C3DZ", "equivalent")])
    write_ndjson(local, tmp_path / "data")
    write_json(maps, tmp_path / "site-codes.json")
    loaded = load_cohort([tmp_path / "data"], concept_maps=[tmp_path / "site-codes.json"])
    pd.testing.assert_frame_equal(by_patient(loaded.patients), by_patient(cohort.patients))  # ... once mapped
    assert loaded.concept_maps  # the ConceptMap read is named for the provenance


def test_load_cohort_of_a_missing_input_names_it(tmp_path: Path) -> None:
    from fhir_pts.errors import InputError

    with pytest.raises(InputError, match=r"nowhere\.json"):
        load_cohort([tmp_path / "nowhere.json"])


# --------------------------------------------------------------------------------------------- analyse


def test_analyse_runs_every_contract_measure(outcomes: list[AnalysisOutcome]) -> None:
    ids = [o.info.id for o in outcomes]
    assert [i for i in ids if i in codes.CONTRACT_MEASURES] == list(codes.CONTRACT_MEASURES)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]


def test_analyse_results_as_computed_by_hand(outcomes: list[AnalysisOutcome]) -> None:
    assert value(outcomes, "cohort", "patients") == 2
    assert value(outcomes, "cohort", "age_mean") == pytest.approx((49 + 60) / 2)
    assert value(outcomes, "cohort", "age_sd") == pytest.approx(11 / 2**0.5)  # sample SD of 49 and 60
    assert value(outcomes, "technical-success", "numerator") == 2
    assert value(outcomes, "technical-success", "denominator") == 2
    assert value(outcomes, "major-complications", "proportion") == pytest.approx(1 / 2)
    # Kaplan-Meier: primary patency lost by both (S = 1/2 after day 60, 0 after day 180) ...
    assert value(outcomes, "primary-patency", "events") == 2
    assert value(outcomes, "primary-patency", "proportion_at_last_follow_up") == 0
    # ... primary-assisted by pat2 only, pat1 censored on day 180: S = 1/2
    assert value(outcomes, "primary-assisted-patency", "events") == 1
    assert value(outcomes, "primary-assisted-patency", "proportion_at_last_follow_up") == pytest.approx(1 / 2)
    assert value(outcomes, "primary-patency", "km_6m") is None  # 6 months = day 182.6, after every follow-up
    assert value(outcomes, "villalta", "n_pairs") == 1
    assert (value(outcomes, "villalta", "baseline_median"), value(outcomes, "villalta", "followup_median")) == (11, 0)
    assert value(outcomes, "civiq20", "n_pairs") == 0


def test_analyse_runs_the_chosen_analyses_only_and_reports_each(cohort: Cohort) -> None:
    seen: list[str] = []
    outcomes = analyse(cohort, ["technical-success", "cohort"], on_outcome=lambda o: seen.append(o.info.id))
    assert [o.info.id for o in outcomes] == seen
    assert sorted(seen) == ["cohort", "technical-success"]


def test_analyse_an_unknown_analysis_is_an_error_naming_it(cohort: Cohort) -> None:
    with pytest.raises(Exception, match="no-such-measure"):
        analyse(cohort, ["cohort", "no-such-measure"])


def test_analyse_uses_the_plugin_manager_and_parameters_given() -> None:
    older = AnalysisInfo(id="older", title="Older", description="patients aged at least min_age",
                         default_parameters={"min_age": 0})  # fmt: skip

    class Older:
        @hookimpl
        def fhir_pts_describe_analyses(self) -> list[AnalysisInfo]:
            return [older]

        @hookimpl
        def fhir_pts_run_analysis(
            self, analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
        ) -> AnalysisResult | None:
            if analysis.id != older.id:
                return None
            ages = cohort.patients["age"].dropna()
            return AnalysisResult(statistics=[Statistic("older", float((ages >= parameters["min_age"]).sum()))])

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Older(), name="older-plugin")
    small = cohort_from_rows([{"age": 70}, {"age": 41}, {"age": None}])
    assert value(analyse(small, ["older"], plugin_manager=pm), "older", "older") == 2  # the default: min_age 0
    [outcome] = analyse(small, ["older"], {"older": {"min_age": 50}}, plugin_manager=pm)
    assert (outcome.plugin, value([outcome], "older", "older")) == ("older-plugin", 1)


# ------------------------------------------------------------------------------------------- write_run


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_write_run_writes_the_four_files(tmp_path: Path, cohort: Cohort, outcomes: list[AnalysisOutcome]) -> None:
    written = write_run(tmp_path, cohort, outcomes, report=False)
    assert sorted(written) == ["cohort.csv", "measure-reports.json", "problems.csv", "results.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)
    rows = read_csv(tmp_path / "cohort.csv")
    assert sorted(r["patient_id"] for r in rows) == ["pat1", "pat2"]
    results = {(r["measure"], r["statistic"]): r["value"] for r in read_csv(tmp_path / "results.csv")}
    assert float(results[("technical-success", "proportion")]) == 1.0
    assert float(results[("cohort", "age_mean")]) == 54.5
    [problem] = read_csv(tmp_path / "problems.csv")
    assert (problem["resource_id"], problem["field"]) == ("obs1-bad", "valueCodeableConcept")
    bundle = json.loads((tmp_path / "measure-reports.json").read_text(encoding="utf-8"))
    measures = {e["resource"]["measure"].rsplit("/", 1)[1].partition("|")[0] for e in bundle["entry"]}
    assert set(codes.CONTRACT_MEASURES) <= measures


def test_write_run_deidentified_has_no_patient_id(
    tmp_path: Path, cohort: Cohort, outcomes: list[AnalysisOutcome]
) -> None:
    write_run(tmp_path, cohort, outcomes, report=False, deidentify=True)
    text = "".join(p.read_text(encoding="utf-8") for p in tmp_path.iterdir())
    assert "pat1" not in text and "pat2" not in text and "1970-05-06" not in text
    assert len(read_csv(tmp_path / "cohort.csv")) == 2
    assert cohort.patients["patient_id"].tolist() == ["pat1", "pat2"]  # the cohort itself is left as it was


def test_write_run_with_the_report(tmp_path: Path, cohort: Cohort, outcomes: list[AnalysisOutcome],
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from fhir_pts.outputs import rendering

    monkeypatch.setattr(rendering, "EXPORT_FORMATS", ("svg",))  # PNG/PDF figures are the report tests' business
    data = tmp_path / "hospital.json"
    write_bundle(hospital(), data)
    steps: list[str] = []
    written = write_run(tmp_path / "out", cohort, outcomes, inputs=[data], command="run hospital.json",
                        on_step=steps.append)  # fmt: skip
    assert written["report.html"] == tmp_path / "out" / "report.html"
    assert steps[0] == "data files" and len(steps) > 1
    assert "hospital.json" in written["report.html"].read_text(encoding="utf-8")  # the input, named


# ------------------------------------------------------------------------------- the smaller functions


def test_add_source_findings_puts_the_source_problems_first(cohort: Cohort) -> None:
    copy = cohort_from_resources(hospital())
    fetched = Problem("Bundle", "export-1", "error", "export error file: 1 OperationOutcome")
    same = add_source_findings(copy, [fetched], ["the server holds no AdverseEvent"])
    assert same is copy
    assert same.problems == [fetched, *cohort.problems]
    assert same.data_gaps == ["the server holds no AdverseEvent"]


def test_installed_instruments_are_the_contract_ones_then_the_plugins() -> None:
    assert [i.id for i in installed_instruments()][:2] == ["villalta", "civiq20"]
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(ToyPlugin(), name="toy-plugin")
    assert [i.id for i in installed_instruments(pm)] == ["villalta", "civiq20", "toy"]


def test_warm_up_imports_what_the_analyses_and_the_report_need() -> None:
    """In a fresh interpreter (this one has imported everything already)."""
    code = (
        "import sys\n"
        "from fhir_pts.pipeline import warm_up\n"
        "needed = ['lifelines', 'statsmodels.regression.linear_model', 'fhir_pts.analyses.stats',"
        " 'fhir_pts.outputs.report']\n"
        "before = [m in sys.modules for m in needed]\n"
        "warm_up(report=False)\n"
        "without_report = [m in sys.modules for m in needed]\n"
        "warm_up()\n"
        "print(before, without_report, [m in sys.modules for m in needed])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, without_report, with_report = done.stdout.strip().split("] [")
    assert before == "[False, False, False, False"  # else this test would prove nothing
    assert without_report == "True, True, True, False"
    assert with_report == "True, True, True, True]"
