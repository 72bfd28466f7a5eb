"""The plugin host: isolation of managers, allow/deny lists, failure isolation, duplicates, third-party plugins."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fhir_pts import hookimpl
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.cohort.model import Cohort, empty_patients_frame
from fhir_pts.plugin_manager import (
    ALLOW_ENV,
    BLOCK_ENV,
    CONTRACT_ORDER,
    PluginError,
    PluginWarning,
    get_plugin_manager,
    list_analyses,
    plugin_distributions,
    run_analyses,
)
from fhir_pts.testing import cohort_from_rows

THIRDPARTY_DIR = Path(__file__).parent / "plugins" / "thirdparty"
BUILTINS = {"descriptive", "patency", "scores", "regression"}
TEST_PLUGINS = {"thirdparty", "broken"}


# ------------------------------------------------------------------------------------------------ factories


def cohort_of_ages(*ages: int | None) -> Cohort:
    rows = [{"patient_id": f"p{i}", "age": a, "sex": "female"} for i, a in enumerate(ages)]
    return cohort_from_rows(rows, period_start=dt.date(2015, 1, 1), period_end=dt.date(2016, 1, 1))


class FakePlugin:
    """A plugin object providing analyses ``ids``; ``fail`` makes its run hook raise."""

    def __init__(self, *ids: str, fail: Exception | None = None, describe_fail: Exception | None = None) -> None:
        self.infos = [AnalysisInfo(id=i, title=i, description=i, default_parameters={"k": 1}) for i in ids]
        self.fail = fail
        self.describe_fail = describe_fail
        self.calls: list[str] = []

    @hookimpl
    def fhir_pts_describe_analyses(self) -> list[AnalysisInfo]:
        if self.describe_fail is not None:
            raise self.describe_fail
        return self.infos

    @hookimpl
    def fhir_pts_run_analysis(
        self, analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
    ) -> AnalysisResult | None:
        if analysis.id not in {i.id for i in self.infos}:
            return None
        self.calls.append(analysis.id)
        if self.fail is not None:
            raise self.fail
        return AnalysisResult(statistics=[Statistic("k", float(parameters["k"]), n=len(cohort))])


def bare_manager(**plugins: object):  # type: ignore[no-untyped-def]
    pm = get_plugin_manager(load_entry_points=False)
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    return pm


@pytest.fixture
def thirdparty(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the test distributions (with their dist-info and entry points) on sys.path, like installed ones."""
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.syspath_prepend(str(THIRDPARTY_DIR))
    return THIRDPARTY_DIR


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)


# ------------------------------------------------------------------------------------------------ managers


def test_builtins_come_through_entry_points_in_contract_order() -> None:
    pm = get_plugin_manager(allow=BUILTINS)  # other plugins may be installed beside fhir-pts
    listed = list_analyses(pm)
    assert [info.id for info, _ in listed] == list(CONTRACT_ORDER)
    assert {plugin for _, plugin in listed} == BUILTINS
    plugin_of = {info.id: plugin for info, plugin in listed}
    assert (plugin_of["cohort"], plugin_of["secondary-patency"], plugin_of["civiq20"]) == (
        "descriptive",
        "patency",
        "scores",
    )
    assert plugin_of["civiq20-gain-regression"] == "regression"
    assert plugin_distributions(pm)["patency"].startswith("fhir-pts ")


def test_each_call_builds_a_new_isolated_manager() -> None:
    first, second = get_plugin_manager(allow=BUILTINS), get_plugin_manager(allow=BUILTINS)
    assert first is not second
    first.register(FakePlugin("extra"), name="extra")
    assert "extra" in {i.id for i, _ in list_analyses(first)}
    assert "extra" not in {i.id for i, _ in list_analyses(second)}
    assert "extra" not in {i.id for i, _ in list_analyses(get_plugin_manager())}
    assert [i.id for i, _ in list_analyses(first)] == [*CONTRACT_ORDER, "extra"]


def test_no_entry_points_gives_an_empty_manager() -> None:
    assert list_analyses(get_plugin_manager(load_entry_points=False)) == []


def test_allow_argument_loads_only_those() -> None:
    pm = get_plugin_manager(allow=["descriptive"])
    assert [i.id for i, _ in list_analyses(pm)] == ["cohort", "technical-success", "major-complications"]


def test_block_argument() -> None:
    pm = get_plugin_manager(block=["regression", "scores"])
    ids = {i.id for i, _ in list_analyses(pm)}
    assert "villalta" not in ids and "villalta-gain-regression" not in ids
    assert "cohort" in ids
    assert pm.is_blocked("scores")


def test_allow_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, " patency , scores")
    ids = [i.id for i, _ in list_analyses(get_plugin_manager())]
    assert ids == ["imaging-follow-up", "primary-patency", "primary-assisted-patency", "secondary-patency",
                   "villalta", "civiq20"]  # fmt: skip


def test_allow_env_var_set_but_empty_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, "")
    assert list_analyses(get_plugin_manager()) == []


def test_allow_argument_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, "patency")
    assert {p for _, p in list_analyses(get_plugin_manager(allow=["scores"]))} == {"scores"}


def test_disable_env_var_combines_with_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, "patency")
    plugins = {p for _, p in list_analyses(get_plugin_manager(block=["regression"]))}
    assert plugins & BUILTINS == {"descriptive", "scores"}


# ------------------------------------------------------------------------------------------------ running


def test_failing_plugin_is_isolated_and_named() -> None:
    good, bad = FakePlugin("good"), FakePlugin("bad", fail=RuntimeError("kaput"))
    pm = bare_manager(goodplugin=good, badplugin=bad)
    outcomes = run_analyses(pm, cohort_of_ages(40, 50))
    by_id = {o.info.id: o for o in outcomes}
    assert by_id["bad"].error == "badplugin: RuntimeError: kaput"
    assert by_id["bad"].result is None and by_id["bad"].plugin == "badplugin"
    assert by_id["good"].ok and by_id["good"].result.statistic("k").value == 1.0


def test_each_analysis_runs_only_its_own_plugin() -> None:
    a, b = FakePlugin("a1", "a2"), FakePlugin("b1")
    pm = bare_manager(a=a, b=b)
    run_analyses(pm, cohort_of_ages(30), ["b1", "a2"])
    assert (a.calls, b.calls) == (["a2"], ["b1"])


def test_analyses_run_through_pm_hook() -> None:
    """Each analysis is a call of the hook through pluggy (not of the function behind it): pluggy's call
    monitoring sees it, with the plugin's own implementation only."""
    a, b = FakePlugin("a1"), FakePlugin("b1")
    pm = bare_manager(a=a, b=b)
    seen: list[tuple[str, list[str], str]] = []

    def before(hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        if hook_name == "fhir_pts_run_analysis":
            seen.append((hook_name, [i.plugin_name for i in hook_impls], kwargs["analysis"].id))

    undo = pm.add_hookcall_monitoring(before, lambda *args: None)
    try:
        run_analyses(pm, cohort_of_ages(30), ["b1", "a1"])
    finally:
        undo()
    assert sorted(seen) == [("fhir_pts_run_analysis", ["a"], "a1"), ("fhir_pts_run_analysis", ["b"], "b1")]


def test_builtins_run_on_empty_cohort_without_errors() -> None:
    outcomes = run_analyses(get_plugin_manager(allow=BUILTINS), Cohort(empty_patients_frame()))
    assert [o.info.id for o in outcomes] == list(CONTRACT_ORDER)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]


def test_parameters_override_defaults() -> None:
    pm = bare_manager(p=FakePlugin("x"))
    [outcome] = run_analyses(pm, cohort_of_ages(1), ["x"], {"x": {"k": 7}})
    assert outcome.result.statistic("k").value == 7.0


def test_unknown_parameter_and_unrun_analysis_are_errors() -> None:
    pm = bare_manager(p=FakePlugin("x", "y"))
    with pytest.raises(PluginError, match=r"no parameter.*'zz'"):
        run_analyses(pm, cohort_of_ages(1), ["x"], {"x": {"zz": 1}})
    with pytest.raises(PluginError, match="not run: 'y'"):
        run_analyses(pm, cohort_of_ages(1), ["x"], {"y": {"k": 1}})


def test_unknown_id_lists_installed() -> None:
    with pytest.raises(PluginError, match=r"unknown analysis id\(s\) 'nope'; installed: .*civiq20.*villalta"):
        run_analyses(get_plugin_manager(), Cohort(empty_patients_frame()), ["cohort", "nope"])


def test_duplicate_measure_ids_are_a_clear_error() -> None:
    pm = bare_manager(first=FakePlugin("same"), second=FakePlugin("same"))
    with pytest.raises(PluginError, match="'same' is provided by both 'first' and 'second'"):
        list_analyses(pm)


def test_duplicate_of_a_builtin_id() -> None:
    pm = get_plugin_manager(allow=BUILTINS)
    pm.register(FakePlugin("villalta"), name="impostor")
    with pytest.raises(PluginError, match="'villalta' is provided by both 'scores' and 'impostor'"):
        run_analyses(pm, Cohort(empty_patients_frame()))


def test_plugin_that_cannot_describe_is_left_out_with_a_warning() -> None:
    pm = bare_manager(ok=FakePlugin("fine"), bad=FakePlugin("x", describe_fail=ValueError("no")))
    with pytest.warns(PluginWarning, match="bad: ValueError: no"):
        assert [i.id for i, _ in list_analyses(pm)] == ["fine"]


def test_result_of_wrong_type_is_an_error() -> None:
    class Wrong(FakePlugin):
        @hookimpl
        def fhir_pts_run_analysis(self, analysis, cohort, parameters):  # type: ignore[no-untyped-def]
            return {"not": "a result"}

    [outcome] = run_analyses(bare_manager(w=Wrong("w")), cohort_of_ages(1))
    assert outcome.error == "w: TypeError: fhir_pts_run_analysis returned dict, not AnalysisResult"


# ------------------------------------------------------------------------------------------------ third party


def test_thirdparty_plugin_found_by_entry_point(thirdparty: Path) -> None:
    pm = get_plugin_manager()
    listed = {i.id: p for i, p in list_analyses(pm)}
    assert listed["thirdparty-older-patients"] == "thirdparty"
    assert listed["thirdparty-broken"] == "broken"
    assert listed["cohort"] == "descriptive"
    assert plugin_distributions(pm)["thirdparty"] == "fhir-pts-thirdparty-test 0.1"
    assert "thirdparty" not in {p for _, p in list_analyses(get_plugin_manager(block=["thirdparty"]))}


def test_thirdparty_runs_and_lands_in_outputs_broken_one_isolated(thirdparty: Path, tmp_path: Path) -> None:
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.measurereport import MeasureReport

    from fhir_pts.outputs.writer import write_outputs

    cohort = cohort_of_ages(30, 50, 70, None)
    outcomes = run_analyses(get_plugin_manager(allow=BUILTINS | TEST_PLUGINS), cohort)
    by_id = {o.info.id: o for o in outcomes}
    assert by_id["thirdparty-broken"].error == "broken: ZeroDivisionError: deliberately broken"
    older = by_id["thirdparty-older-patients"]
    assert older.ok and older.result.statistic("older").value == 2
    assert all(by_id[i].ok for i in CONTRACT_ORDER)

    written = write_outputs(tmp_path / "out", cohort, outcomes)
    with written["results.csv"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    mine = [r for r in rows if r["measure"] == "thirdparty-older-patients"]
    assert [(r["statistic"], r["value"], r["n"]) for r in mine] == [
        ("older", "2", "3"),
        ("proportion", repr(2 / 3), "3"),
    ]
    assert not [r for r in rows if r["measure"] == "thirdparty-broken"]
    assert {r["measure"] for r in rows} >= set(CONTRACT_ORDER)

    bundle = json.loads(written["measure-reports.json"].read_text())
    Bundle.model_validate(bundle)
    reports = {e["resource"]["measure"]: e["resource"] for e in bundle["entry"]}
    report = reports["https://fhir-pts.org/fhir/Measure/thirdparty-older-patients|0.1"]
    MeasureReport.model_validate(report)
    assert report["status"] == "complete"
    assert report["group"][0]["measureScore"]["value"] == pytest.approx(2 / 3)
    broken = reports["https://fhir-pts.org/fhir/Measure/thirdparty-broken|0.1.0"]
    assert broken["status"] == "error"
    assert "broken: ZeroDivisionError: deliberately broken" in broken["text"]["div"]
    assert len(bundle["entry"]) == len(CONTRACT_ORDER) + 2


def test_same_plugin_name_in_two_distributions_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "fhir_pts_clash-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fhir-pts-clash\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fhir_pts]\nscores = fhir_pts_thirdparty_plugin\n")
    monkeypatch.syspath_prepend(str(THIRDPARTY_DIR))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="plugin name 'scores' is declared by"):
        pm = get_plugin_manager(allow=BUILTINS)
    # the first distribution on sys.path wins: here the clash, so the built-in scores plugin is not loaded
    ids = {i.id for i, _ in list_analyses(pm)}
    assert "thirdparty-older-patients" in ids and "villalta" not in ids


def test_plugin_that_cannot_be_imported_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "fhir_pts_missing-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fhir-pts-missing\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fhir_pts]\nmissing = fhir_pts_no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="plugin 'missing' not loaded: ModuleNotFoundError"):
        pm = get_plugin_manager(allow=[*BUILTINS, "missing"])
    assert [i.id for i, _ in list_analyses(pm)] == list(CONTRACT_ORDER)
