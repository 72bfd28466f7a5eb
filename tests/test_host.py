"""The host API (``fhir_pts.host``), used as an EHR analytics host would: only the documented API and the
``fhir_pts`` entry-point group; its numbers are the command line's to the last digit.

The out-of-tree plugin ``plugins/fhir-pts-class-shift`` must be installed (``scripts/test.sh`` does it).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pluggy
import pytest

from fhir_pts import hookimpl
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.host import (
    HOST_API_VERSION,
    FhirPtsHost,
    HostError,
    HostInputError,
    HostResult,
    UnknownAnalysisError,
)
from fhir_pts.plugin_manager import PluginWarning
from tests.contract import CONTRACT_MEASURES

CLASS_SHIFT_ID = "villalta-class-shift"
DATE = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ALL_BUILTIN = CONTRACT_MEASURES


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FHIR_PTS_PLUGINS", raising=False)
    monkeypatch.delenv("FHIR_PTS_DISABLE_PLUGINS", raising=False)


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random synthetic cohort (fhir-pts synth, 60 patients) as one Bundle file."""
    from fhir_pts.synth import synthesize

    path = tmp_path_factory.mktemp("synth") / "cohort.json"
    synthesize(path, patients=60, seed=3, fmt="bundle")
    return path


@pytest.fixture(scope="module")
def cli_out(cohort_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fhir-pts run COHORT --out DIR`` (every installed analysis)."""
    from fhir_pts.cli import main

    out = tmp_path_factory.mktemp("cli")
    assert main(["run", str(cohort_file), "--out", str(out), "--no-report", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def host_result(cohort_file: Path) -> HostResult:
    return FhirPtsHost().run(files=[cohort_file], date=DATE)


def comparable(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The MeasureReports of a Bundle without what differs between two runs (ids, dates)."""
    reports = []
    for entry in bundle["entry"]:
        report = {k: v for k, v in entry["resource"].items() if k not in ("id", "date")}
        reports.append(report)
    return reports


def assert_same_results(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Two results.csv tables agree: same rows, labels and ``n`` exactly, numbers to 12 significant digits
    (contract §4; least-squares fits may differ in the last bits between two computations)."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for column in ("measure", "statistic", "n"):
        assert got[column].astype("string").tolist() == expected[column].astype("string").tolist(), column
    for column in ("value", "ci_low", "ci_high", "p_value"):
        a, b = got[column].astype("float64").tolist(), expected[column].astype("float64").tolist()
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15, nan_ok=True), column


# ------------------------------------------------------------------------------------------- the API


def test_host_api_version_is_semantic() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", HOST_API_VERSION)
    assert HOST_API_VERSION.split(".")[0] == "1"


def test_analyses_come_from_the_entry_points_contract_first_then_the_plugin() -> None:
    ids = [info.id for info in FhirPtsHost().analyses()]
    assert ids[: len(ALL_BUILTIN)] == list(ALL_BUILTIN)
    assert CLASS_SHIFT_ID in ids[len(ALL_BUILTIN) :]
    assert all(isinstance(info, AnalysisInfo) for info in FhirPtsHost().analyses())


def test_environment_allowlist_applies_unless_the_host_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHIR_PTS_PLUGINS", "descriptive")  # a built-in: always there, and nothing else
    assert [i.id for i in FhirPtsHost().analyses()] == list(ALL_BUILTIN)
    assert [i.id for i in FhirPtsHost(allow=["class-shift"]).analyses()] == [*ALL_BUILTIN, CLASS_SHIFT_ID]
    monkeypatch.delenv("FHIR_PTS_PLUGINS")
    monkeypatch.setenv("FHIR_PTS_DISABLE_PLUGINS", "class-shift")
    assert CLASS_SHIFT_ID not in {i.id for i in FhirPtsHost().analyses()}


def test_allow_and_block_choose_plugins_but_not_the_builtins() -> None:
    assert [i.id for i in FhirPtsHost(allow=["descriptive"]).analyses()] == list(ALL_BUILTIN)
    with pytest.warns(PluginWarning, match="built-in plugin 'regression' cannot be blocked"):
        ids = {i.id for i in FhirPtsHost(block=["class-shift", "regression"]).analyses()}
    assert CLASS_SHIFT_ID not in ids and "civiq20-gain-regression" in ids and "villalta" in ids
    assert FhirPtsHost().plugins()[CLASS_SHIFT_ID] == "class-shift"


# ------------------------------------------------------------------------------ same numbers as the CLI


def test_results_csv_has_the_clis_numbers(host_result: HostResult, cli_out: Path, tmp_path: Path) -> None:
    written = host_result.write(tmp_path)
    assert sorted(written) == sorted(["measure-reports.json", "results.csv", "cohort.csv", "problems.csv"])
    for name in ("cohort.csv", "problems.csv"):
        assert (tmp_path / name).read_bytes() == (cli_out / name).read_bytes(), name
    cli_results = pd.read_csv(cli_out / "results.csv")
    assert len(cli_results) > 100
    assert_same_results(host_result.results, cli_results)
    assert_same_results(pd.read_csv(tmp_path / "results.csv"), cli_results)


def test_measure_reports_are_the_clis(host_result: HostResult, cli_out: Path, tmp_path: Path) -> None:
    cli_bundle = json.loads((cli_out / "measure-reports.json").read_text())
    ours, theirs = comparable(host_result.bundle), comparable(cli_bundle)
    assert [r["measure"] for r in ours] == [r["measure"] for r in theirs]
    for mine, cli in zip(ours, theirs, strict=True):  # counts and structure the same; numbers as in results.csv
        assert mine.get("period") == cli.get("period") and mine["status"] == cli["status"]
        populations = [g.get("population") for g in mine.get("group", [])]
        assert populations == [g.get("population") for g in cli.get("group", [])]
    host_result.write(tmp_path)
    assert json.loads((tmp_path / "measure-reports.json").read_text()) == host_result.bundle
    measures = [r["measure"].split("|")[0].rsplit("/", 1)[1] for r in host_result.measure_reports]
    assert measures == [*ALL_BUILTIN, CLASS_SHIFT_ID]
    assert {r["date"] for r in host_result.measure_reports} == {"2026-01-02T03:04:05+00:00"}


def test_measure_report_models_parse_as_r4(host_result: HostResult) -> None:
    models = host_result.measure_report_models()
    assert [m.status for m in models] == ["complete"] * len(host_result.outcomes)
    assert models[1].measure == host_result.measure_report("technical-success")["measure"]
    with pytest.raises(KeyError):
        host_result.measure_report("no-such-measure")


def test_tables_are_dataframes(host_result: HostResult, cli_out: Path) -> None:
    assert list(host_result.results.columns) == ["measure", "statistic", "value", "ci_low", "ci_high", "p_value", "n"]
    cli_cohort = pd.read_csv(cli_out / "cohort.csv", dtype={"patient_id": "string"})
    assert host_result.patients["patient_id"].tolist() == cli_cohort["patient_id"].tolist()
    assert len(host_result.problems) == len(host_result.problem_list) == len(pd.read_csv(cli_out / "problems.csv"))
    patients = host_result.results.query("measure == 'cohort' and statistic == 'patients'")["value"].item()
    assert patients == len(host_result.patients) == len(cli_cohort) > 30  # of 60 synthetic, some lack an index


def test_resources_in_memory_give_the_same_numbers(cohort_file: Path, host_result: HostResult) -> None:
    bundle = json.loads(cohort_file.read_text())
    resources = [entry["resource"] for entry in bundle["entry"]]
    in_memory = FhirPtsHost().run(resources, date=DATE)
    assert_same_results(in_memory.results, host_result.results)
    assert len(in_memory.measure_reports) == len(host_result.measure_reports)
    as_bundle = FhirPtsHost().run([bundle], analyses=["cohort"])  # a Bundle among the resources is opened
    assert as_bundle.results.set_index("statistic").loc["patients", "value"] == len(host_result.patients)


# --------------------------------------------------------------------------------------------- isolation


class Echo:
    """A plugin object: one analysis whose only statistic is its parameter ``k``."""

    def __init__(self, measure_id: str = "echo") -> None:
        self.info = AnalysisInfo(id=measure_id, title="Echo", description="k", default_parameters={"k": 1})

    @hookimpl
    def fhir_pts_describe_analyses(self) -> list[AnalysisInfo]:
        return [self.info]

    @hookimpl
    def fhir_pts_run_analysis(
        self, analysis: AnalysisInfo, cohort: Any, parameters: Mapping[str, Any]
    ) -> AnalysisResult | None:
        if analysis.id != self.info.id:
            return None
        return AnalysisResult(statistics=[Statistic("k", float(parameters["k"]), n=len(cohort))])


def k_of(result: HostResult) -> float:
    return float(result.results.set_index("statistic").loc["k", "value"])


def test_two_hosts_do_not_see_each_others_plugins(cohort_file: Path) -> None:
    first, second = FhirPtsHost(load_entry_points=False), FhirPtsHost(load_entry_points=False)
    assert first.register(Echo(), name="echo") == "echo"
    assert [i.id for i in first.analyses()] == ["echo"]
    assert second.analyses() == []
    assert "echo" not in {i.id for i in FhirPtsHost().analyses()}
    with pytest.raises(UnknownAnalysisError):
        second.run(files=[cohort_file], analyses=["echo"])
    first.unregister("echo")
    assert first.analyses() == []


def test_two_hosts_keep_their_own_default_parameters(cohort_file: Path) -> None:
    first = FhirPtsHost(load_entry_points=False, parameters={"echo": {"k": 7}})
    second = FhirPtsHost(load_entry_points=False)
    first.register(Echo(), name="echo")
    second.register(Echo(), name="echo")
    assert k_of(first.run(files=[cohort_file])) == 7
    assert k_of(second.run(files=[cohort_file])) == 1
    assert k_of(first.run(files=[cohort_file], parameters={"echo": {"k": 3}})) == 3  # a run's override wins
    assert k_of(first.run(files=[cohort_file])) == 7  # and does not stick


def test_two_hosts_keep_their_own_windows(cohort_file: Path) -> None:
    narrow = FhirPtsHost(allow=["scores"], windows={"followup_start": 91, "followup_end": 91})
    usual = FhirPtsHost(allow=["scores"])
    pairs = {}
    for name, host in (("narrow", narrow), ("usual", usual)):
        table = host.run(files=[cohort_file], analyses=["villalta"]).results.set_index("statistic")
        pairs[name] = table.loc["n_pairs", "value"]
    assert pairs["narrow"] < pairs["usual"]


def test_register_a_blocked_or_taken_name_is_an_error() -> None:
    host = FhirPtsHost(load_entry_points=False, block=["echo"])
    with pytest.raises(HostError, match="blocked"):
        host.register(Echo(), name="echo")
    host.register(Echo("other"), name="other")
    with pytest.raises(HostError):
        host.register(Echo("third"), name="other")


def test_unknown_analysis_is_refused_before_reading_anything(tmp_path: Path) -> None:
    with pytest.raises(UnknownAnalysisError) as caught:
        FhirPtsHost().run(files=[tmp_path / "missing.json"], analyses=["cohort", "nope"])
    assert caught.value.unknown == ["nope"] and "cohort" in caught.value.installed


def test_inputs_are_checked(tmp_path: Path) -> None:
    host = FhirPtsHost(allow=["descriptive"])
    with pytest.raises(HostError, match="exactly one"):
        host.run()
    with pytest.raises(HostError, match="exactly one"):
        host.run([], files=[tmp_path])
    with pytest.raises(HostInputError):
        host.run(files=[tmp_path / "missing.json"])
    with pytest.raises(HostError, match="unknown window"):
        FhirPtsHost(windows={"baseline_begin": -30})


def test_undeclared_parameter_is_an_error(cohort_file: Path) -> None:
    with pytest.raises(HostError, match="no parameter"):
        FhirPtsHost(allow=["descriptive"]).run(files=[cohort_file], parameters={"cohort": {"x": 1}})


# ------------------------------------------------------------------------------------------ index period


def test_index_period_restricts_the_patients_and_sets_the_period(host_result: HostResult, cohort_file: Path) -> None:
    index = sorted(pd.to_datetime(host_result.patients["index_date"]).dt.date)
    start, end = index[10], index[39]
    inside = sum(start <= d <= end for d in index)
    result = FhirPtsHost(allow=["descriptive"]).run(
        files=[cohort_file], analyses=["cohort"], index_period=(start.isoformat(), end)
    )
    assert result.results.set_index("statistic").loc["patients", "value"] == inside == len(result.patients)
    assert result.measure_reports[0]["period"] == {"start": start.isoformat(), "end": end.isoformat()}
    assert result.analysed_cohort.flow["outside_index_period"] == len(index) - inside
    with pytest.raises(HostError, match="after its end"):
        FhirPtsHost(allow=["descriptive"]).analyse(result.analysed_cohort, index_period=(end, start))
    with pytest.raises(HostError, match="not a date"):
        FhirPtsHost(allow=["descriptive"]).analyse(result.analysed_cohort, index_period=("2020-13-45", None))


# ---------------------------------------------------------------------------------- the out-of-tree plugin


def test_class_shift_plugin_is_listed_by_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from fhir_pts.cli import main

    assert main(["analyses"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(CLASS_SHIFT_ID))
    assert line.split()[1] == "class-shift"


def test_class_shift_report_is_in_the_clis_measure_reports(cli_out: Path, host_result: HostResult) -> None:
    bundle = json.loads((cli_out / "measure-reports.json").read_text())
    (report,) = [e["resource"] for e in bundle["entry"] if "/Measure/villalta-class-shift|" in e["resource"]["measure"]]
    assert report["status"] == "complete"
    table = host_result.results[host_result.results["measure"] == CLASS_SHIFT_ID].set_index("statistic")["value"]
    assert table["improved"] + table["unchanged"] + table["worsened"] == table["n_pairs"]
    shift = [
        table[f"shift_{b}_to_{f}"]
        for b in ("none", "mild", "moderate", "severe")
        for f in ("none", "mild", "moderate", "severe")
    ]
    assert sum(shift) == table["n_pairs"] > 0


def test_a_broken_plugin_leaves_the_others_intact(
    monkeypatch: pytest.MonkeyPatch,
    cohort_file: Path,
    host_result: HostResult,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import fhir_pts_class_shift.plugin as class_shift_plugin

    def boom(cohort: Any) -> AnalysisResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(class_shift_plugin, "class_shift", boom)
    broken = FhirPtsHost().run(files=[cohort_file], date=DATE)
    (failed,) = broken.failed
    assert failed.info.id == CLASS_SHIFT_ID and failed.error == "class-shift: RuntimeError: boom"
    report = broken.measure_report(CLASS_SHIFT_ID)
    assert report["status"] == "error"
    assert "class-shift: RuntimeError: boom" in json.dumps(report) and "group" not in report
    assert CLASS_SHIFT_ID not in set(broken.results["measure"])
    others = host_result.results[host_result.results["measure"] != CLASS_SHIFT_ID].reset_index(drop=True)
    assert_same_results(broken.results, others)
    assert [r["status"] for r in broken.measure_reports] == ["complete"] * len(ALL_BUILTIN) + ["error"]
    assert broken.measure_report_models()[-1].status == "error"  # the error report is valid R4 too

    from fhir_pts.cli import main

    assert main(["run", str(cohort_file), "--out", str(tmp_path), "--no-report", "--quiet"]) == 3  # one failed
    assert "villalta-class-shift failed: class-shift: RuntimeError: boom" in capsys.readouterr().err
    assert_same_results(pd.read_csv(tmp_path / "results.csv"), others)
    statuses = [e["resource"]["status"] for e in json.loads((tmp_path / "measure-reports.json").read_text())["entry"]]
    assert statuses == ["complete"] * len(ALL_BUILTIN) + ["error"]


# ----------------------------------------------------------------------------- raw pluggy, nothing else


def test_raw_pluggy_host_lists_and_runs_every_analysis(cohort_file: Path, host_result: HostResult) -> None:
    """A host that knows only pluggy, the hook specs and the entry-point group name."""
    import fhir_pts.hookspecs as specs
    from fhir_pts.pipeline import load_cohort

    pm = pluggy.PluginManager("fhir_pts")
    pm.add_hookspecs(specs)
    assert pm.load_setuptools_entrypoints("fhir_pts") >= 5
    instruments = [i for declared in pm.hook.fhir_pts_instruments() for i in declared]
    assert [i.id for i in instruments] == ["villalta", "civiq20"]  # the built-in entry point `instruments`
    infos = [info for infos in pm.hook.fhir_pts_describe_analyses(instruments=instruments) for info in infos]
    assert {info.id for info in infos} == {*ALL_BUILTIN, CLASS_SHIFT_ID}
    cohort = load_cohort([cohort_file])
    for info in infos:
        result = pm.hook.fhir_pts_run_analysis(analysis=info, cohort=cohort, parameters=info.default_parameters)
        assert isinstance(result, AnalysisResult), info.id
        expected = host_result.results[host_result.results["measure"] == info.id]
        got = [s.value for s in result.statistics]
        assert [s.name for s in result.statistics] == expected["statistic"].tolist(), info.id
        assert pd.Series(got, dtype="float64").tolist() == pytest.approx(
            expected["value"].tolist(), rel=1e-12, abs=1e-15, nan_ok=True
        ), info.id


# ------------------------------------------------------------------------------------- a hospital server


@pytest.mark.server
def test_host_reads_a_hospital_fhir_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``run(server=...)`` against the real sekmet-fhir test server gives the numbers of the same resources
    handed over in memory."""
    from fhir_pts.sources.server.config import ServerConfig
    from fhir_pts.sources.server.http import check
    from tests.sources.server.cohort_factory import cohort_resources, transaction
    from tests.sources.server.sekmet_harness import own_server, smart_session

    resources = cohort_resources(n_patients=10, n_others=3, seed=11, prefix="host")
    with own_server(tmp_path_factory.mktemp("sekmet-host")) as info:
        admin = smart_session(info)
        headers = {"Content-Type": "application/fhir+json"}
        check(admin.post(info.base_url, json=transaction(resources), headers=headers), info.base_url, "transaction")
        keys = info.full_rs384
        config = ServerConfig(url=info.base_url, auth="smart", client_id=keys.client_id, private_key=keys.private_key)
        host = FhirPtsHost(allow=["descriptive", "patency", "scores"])
        via_server = host.run(server=config, date=DATE)
    in_memory = host.run(resources, date=DATE)
    assert len(via_server.patients) == len(in_memory.patients) == 10
    assert_same_results(via_server.results, in_memory.results)
    with pytest.raises(HostInputError):  # the server is gone now
        host.run(server=ServerConfig(url=info.base_url, retries=0, timeout=5))


def test_the_documented_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The complete example of docs/host-api.md, executed as written."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "host-api.md").read_text(encoding="utf-8")
    example = text.split("## A complete example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/host-api.md", "exec"), {"__name__": "docs_example"})
    printed = capsys.readouterr().out
    assert "technical success " in printed and "nan" not in printed
    assert "'results.csv'" in printed and (tmp_path / "out" / "measure-reports.json").is_file()
    assert "villalta-class-shift" not in printed and "failed:" not in printed


# ------------------------------------------------------------------------------- restricting by index date


def dated_cohort(*index_dates: str | None) -> Any:
    import datetime as _dt

    from fhir_pts.testing import cohort_from_rows

    rows = [{"patient_id": f"p{i}", "index_date": day} for i, day in enumerate(index_dates)]
    return cohort_from_rows(rows, period_start=_dt.date(2019, 1, 1), period_end=_dt.date(2021, 6, 30))


def test_restrict_to_index_period_by_hand() -> None:
    from fhir_pts.host import restrict_to_index_period

    cohort = dated_cohort("2019-01-01", "2019-06-15", "2020-01-01", "2021-03-02", None)
    both = restrict_to_index_period(cohort, dt.date(2019, 6, 15), dt.date(2020, 1, 1))  # both ends inclusive
    assert both.patients["patient_id"].tolist() == ["p1", "p2"]
    assert (both.period_start, both.period_end) == (dt.date(2019, 6, 15), dt.date(2020, 1, 1))
    assert both.flow["outside_index_period"] == 3  # the patient without an index date is left out too
    open_end = restrict_to_index_period(cohort, dt.date(2020, 1, 1), None)
    assert open_end.patients["patient_id"].tolist() == ["p2", "p3"]
    assert (open_end.period_start, open_end.period_end) == (dt.date(2020, 1, 1), dt.date(2021, 6, 30))
    open_start = restrict_to_index_period(cohort, None, dt.date(2019, 3, 1))
    assert open_start.patients["patient_id"].tolist() == ["p0"]
    assert (open_start.period_start, open_start.period_end) == (dt.date(2019, 1, 1), dt.date(2019, 3, 1))
    late = restrict_to_index_period(cohort, dt.date(2022, 1, 1), None)  # after the cohort's own end
    assert len(late.patients) == 0 and (late.period_start, late.period_end) == (dt.date(2022, 1, 1),) * 2
    assert restrict_to_index_period(cohort, None, None) is cohort
    assert len(cohort.patients) == 5  # the original is untouched


def test_the_old_result_names_still_work_and_say_they_are_deprecated(host_result: HostResult) -> None:
    """``cohort`` / ``cohort_object`` (host API 1.0, 1.1) are ``patients`` / ``analysed_cohort`` since 1.2."""
    with pytest.warns(DeprecationWarning, match="use HostResult.patients"):
        assert host_result.cohort is host_result.patients
    with pytest.warns(DeprecationWarning, match="use HostResult.analysed_cohort"):
        assert host_result.cohort_object is host_result.analysed_cohort
    assert host_result.analysed_cohort.patients is host_result.patients


def test_unknown_analyses_give_one_message_through_the_host_and_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One error for every door: the host raises it (a HostError), the command line prints it and exits 2."""
    from fhir_pts.cli import main
    from fhir_pts.pipeline import UnknownAnalysisError as PipelineUnknown

    host = FhirPtsHost()
    with pytest.raises(UnknownAnalysisError) as caught:
        host.run(resources=[], analyses=["nope", "cohort"])
    assert isinstance(caught.value, HostError) and isinstance(caught.value, PipelineUnknown)
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "out"), "--analysis", "nope"]) == 2
    assert capsys.readouterr().err.strip() == f"fhir-pts: error: {caught.value}"
    assert str(caught.value).startswith("unknown analysis id(s) 'nope'; installed: ")
