"""The plugin host: isolation of managers, allow/deny lists, failure isolation, duplicates, third-party plugins."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import fhir_pts
from fhir_pts import hookimpl
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.cohort.model import Cohort, empty_patients_frame
from fhir_pts.plugin_manager import (
    ALLOW_ENV,
    BLOCK_ENV,
    BUILTIN_PLUGINS,
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


def test_builtins_are_registered_by_import_in_contract_order() -> None:
    pm = get_plugin_manager(allow=[])  # other plugins may be installed beside fhir-pts: none of them
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
    assert pm.get_plugin("patency") is BUILTIN_PLUGINS["patency"]  # the module itself, not an entry point
    assert plugin_distributions(pm)["patency"] == f"fhir-pts {fhir_pts.__version__}"


def test_a_checkout_without_installed_metadata_has_the_builtin_analyses(tmp_path: Path) -> None:
    """Only the package's source and pluggy on the path (``python -S``: no site-packages, no dist-info of
    fhir-pts, hence none of its entry points): every contract measure is still there."""
    import pluggy

    (tmp_path / "fhir_pts").symlink_to(Path(fhir_pts.__file__).parent, target_is_directory=True)
    (tmp_path / "pluggy").symlink_to(Path(pluggy.__file__).parent, target_is_directory=True)
    script = (
        "import importlib.metadata as m, json;"
        "from fhir_pts.plugin_manager import get_plugin_manager, list_analyses;"
        "print(json.dumps([[d.metadata['Name'] for d in m.distributions()],"
        " [i.id for i, _ in list_analyses(get_plugin_manager())]]))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, check=True)
    distributions, ids = json.loads(done.stdout)
    assert distributions == []  # no metadata at all: nothing comes from entry points
    assert ids == list(CONTRACT_ORDER)


def test_each_call_builds_a_new_isolated_manager() -> None:
    first, second = get_plugin_manager(allow=BUILTINS), get_plugin_manager(allow=BUILTINS)
    assert first is not second
    first.register(FakePlugin("extra"), name="extra")
    assert "extra" in {i.id for i, _ in list_analyses(first)}
    assert "extra" not in {i.id for i, _ in list_analyses(second)}
    assert "extra" not in {i.id for i, _ in list_analyses(get_plugin_manager())}
    assert [i.id for i, _ in list_analyses(first)] == [*CONTRACT_ORDER, "extra"]


def test_no_entry_points_gives_a_manager_without_analyses() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    assert list_analyses(pm) == []
    assert pm.get_plugin("instruments") is BUILTIN_PLUGINS["instruments"]  # the cohort's columns always exist


def test_allow_argument_loads_only_those_besides_the_builtins(thirdparty: Path) -> None:
    plugins = {p for _, p in list_analyses(get_plugin_manager(allow=["thirdparty"]))}
    assert plugins == BUILTINS | {"thirdparty"}
    assert {p for _, p in list_analyses(get_plugin_manager(allow=["descriptive"]))} == BUILTINS


def test_block_argument(thirdparty: Path) -> None:
    pm = get_plugin_manager(allow=TEST_PLUGINS, block=["broken"])  # allow: leave out other installed plugins
    assert {p for _, p in list_analyses(pm)} == BUILTINS | {"thirdparty"}
    assert pm.is_blocked("broken")


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_builtin_analyses_cannot_be_blocked(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "environment":
        monkeypatch.setenv(BLOCK_ENV, "regression,scores")
    with pytest.warns(PluginWarning, match="built-in plugin '(regression|scores)' cannot be blocked") as caught:
        pm = get_plugin_manager(allow=[], block=["regression", "scores"] if how == "argument" else None)
    assert sum("cannot be blocked" in str(w.message) for w in caught) == 2  # regression and scores
    assert [i.id for i, _ in list_analyses(pm)] == list(CONTRACT_ORDER)
    assert not pm.is_blocked("scores")
    outcomes = run_analyses(pm, cohort_of_ages(50, 60), ["villalta-gain-regression"])
    assert [(o.info.id, o.plugin, o.ok) for o in outcomes] == [("villalta-gain-regression", "regression", True)]


def test_allow_env_var(thirdparty: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, " thirdparty , patency")
    assert {p for _, p in list_analyses(get_plugin_manager())} == BUILTINS | {"thirdparty"}


def test_allow_env_var_set_but_empty_loads_no_entry_point(thirdparty: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, "")
    assert [i.id for i, _ in list_analyses(get_plugin_manager())] == list(CONTRACT_ORDER)


def test_allow_argument_wins_over_env(thirdparty: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, "thirdparty")
    assert {p for _, p in list_analyses(get_plugin_manager(allow=["broken"]))} == BUILTINS | {"broken"}


def test_disable_env_var_combines_with_block(thirdparty: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, "thirdparty")
    assert {p for _, p in list_analyses(get_plugin_manager(allow=TEST_PLUGINS, block=["broken"]))} == BUILTINS


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
    (info / "entry_points.txt").write_text("[fhir_pts]\nthirdparty = fhir_pts_broken_plugin\n")
    monkeypatch.syspath_prepend(str(THIRDPARTY_DIR))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="plugin name 'thirdparty' is declared by"):
        pm = get_plugin_manager(allow=["thirdparty"])
    # the first distribution on sys.path wins: here the clash, whose 'thirdparty' is the broken plugin
    assert {p for _, p in list_analyses(pm)} == BUILTINS | {"thirdparty"}
    assert pm.get_plugin("thirdparty").__name__ == "fhir_pts_broken_plugin"
    # a built-in's name stays the built-in's: a distribution declaring it is not loaded, with a warning
    (info / "entry_points.txt").write_text("[fhir_pts]\nscores = fhir_pts_thirdparty_plugin\n")
    with pytest.warns(PluginWarning, match=r"plugin name 'scores' is declared by fhir-pts \(built in\)"):
        pm = get_plugin_manager(allow=["scores"])
    assert pm.get_plugin("scores") is BUILTIN_PLUGINS["scores"]
    assert "thirdparty-older-patients" not in {i.id for i, _ in list_analyses(pm)}


def test_plugin_that_cannot_be_imported_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "fhir_pts_missing-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fhir-pts-missing\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fhir_pts]\nmissing = fhir_pts_no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="plugin 'missing' not loaded: ModuleNotFoundError"):
        pm = get_plugin_manager(allow=[*BUILTINS, "missing"])
    assert [i.id for i, _ in list_analyses(pm)] == list(CONTRACT_ORDER)
