"""Every hook of ``fhir_pts/hookspecs.py`` has a test and documentation (datasette style), and one test each.

``test_plugin_hooks_have_tests`` fails when a hook has no ``def test_hook_<hookname>`` anywhere under ``tests/``;
``test_plugin_hooks_are_documented`` fails when a hook's name appears neither in ``docs/plugins.md`` nor in
``docs/host-api.md``; ``test_documented_signatures_are_the_specs`` when the hooks table of ``docs/plugins.md``
does not give a hook's exact arguments and return type (read from the spec with :func:`inspect.signature`).
The checks themselves are tested on made-up input, so they can fail.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pluggy
import pytest

from fhir_pts import hookimpl, hookspecs
from fhir_pts.analyses.api import AnalysisInfo, AnalysisResult, Statistic
from fhir_pts.cohort.model import Cohort
from fhir_pts.instruments import Instrument, SummedScore
from fhir_pts.plugin_manager import get_plugin_manager, instruments_of, list_instruments
from fhir_pts.testing import cohort_from_rows

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
HOOK_DOCS = (ROOT / "docs" / "plugins.md", ROOT / "docs" / "host-api.md")


def hook_names(module: types.ModuleType, project: str = hookspecs.PROJECT_NAME) -> list[str]:
    """Names of the functions of ``module`` marked as hook specs of ``project``."""
    marker = f"{project}_spec"
    return sorted(name for name, obj in vars(module).items() if callable(obj) and hasattr(obj, marker))


def untested(hooks: Iterable[str], sources: Iterable[str]) -> list[str]:
    """The hooks without a ``def test_hook_<hook>(`` in any of ``sources``."""
    text = "\n".join(sources)
    return [h for h in hooks if not re.search(rf"^\s*def test_hook_{re.escape(h)}\s*\(", text, re.MULTILINE)]


def undocumented(hooks: Iterable[str], docs: Iterable[str]) -> list[str]:
    """The hooks whose name appears in none of ``docs`` (as a whole word)."""
    text = "\n".join(docs)
    return [h for h in hooks if not re.search(rf"\b{re.escape(h)}\b", text)]


def _read(paths: Iterable[Path]) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in paths if p.is_file()]


# ------------------------------------------------------------------------------------- the meta-tests


def test_hookspecs_define_the_three_hooks() -> None:
    assert hook_names(hookspecs) == ["fhir_pts_describe_analyses", "fhir_pts_instruments", "fhir_pts_run_analysis"]


def test_plugin_hooks_have_tests() -> None:
    missing = untested(hook_names(hookspecs), _read(TESTS.rglob("*.py")))
    assert missing == [], f"hooks without a test_hook_<name> test: {missing}"


def test_plugin_hooks_are_documented() -> None:
    missing = undocumented(hook_names(hookspecs), _read(HOOK_DOCS))
    assert missing == [], f"hooks documented neither in docs/plugins.md nor docs/host-api.md: {missing}"


def documented_signatures(hooks: Iterable[str], doc: str) -> dict[str, tuple[tuple[str, ...], str] | None]:
    """Per hook, the arguments and the return type of its row in the hooks table of ``doc``
    (`` | `name(a, b)` | when | `ReturnType`: ... | ``, a ``|`` in the type escaped as ``\\|``); None: no row."""
    found: dict[str, tuple[tuple[str, ...], str] | None] = {}
    for hook in hooks:
        match = re.search(rf"^\| `{re.escape(hook)}\(([^)]*)\)` \|[^|]*\| `((?:[^`\\]|\\.)*)`", doc, re.MULTILINE)
        if match is None:
            found[hook] = None
            continue
        arguments = tuple(a.strip() for a in match.group(1).split(",") if a.strip())
        found[hook] = arguments, match.group(2).replace("\\|", "|")
    return found


def spec_signatures(module: types.ModuleType, hooks: Iterable[str]) -> dict[str, tuple[tuple[str, ...], str]]:
    """Per hook, its spec's argument names and return annotation, read with :func:`inspect.signature` (as
    datasette's test does)."""
    signatures = {hook: inspect.signature(getattr(module, hook)) for hook in hooks}
    return {hook: (tuple(s.parameters), str(s.return_annotation)) for hook, s in signatures.items()}


def test_documented_signatures_are_the_specs() -> None:
    """As datasette's test: the hooks table of docs/plugins.md gives each hook with the spec's exact arguments
    (the names pluggy passes) and return type."""
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    hooks = hook_names(hookspecs)
    specs = spec_signatures(hookspecs, hooks)
    pm = get_plugin_manager(load_entry_points=False)
    assert {hook: arguments for hook, (arguments, _) in specs.items()} == {
        hook: getattr(pm.hook, hook).spec.argnames for hook in hooks
    }
    assert documented_signatures(hooks, doc) == specs
    # the check can fail: a wrong argument list, a wrong return type and a missing row are seen
    wrong = "| `fhir_pts_run_analysis(analysis, cohort)` | ... | `AnalysisResult`: ... |\n"
    assert documented_signatures(["fhir_pts_run_analysis", "fhir_pts_nope"], wrong) == {
        "fhir_pts_run_analysis": (("analysis", "cohort"), "AnalysisResult"),
        "fhir_pts_nope": None,
    }
    assert specs["fhir_pts_run_analysis"] == (("analysis", "cohort", "parameters"), "AnalysisResult | None")


def test_the_checks_catch_a_hook_without_test_or_documentation() -> None:
    marker = pluggy.HookspecMarker("madeup")
    spec_module = types.ModuleType("madeup_specs")

    @marker
    def madeup_first() -> None: ...

    @marker
    def madeup_second() -> None: ...

    spec_module.madeup_first = madeup_first  # type: ignore[attr-defined]
    spec_module.madeup_second = madeup_second  # type: ignore[attr-defined]
    spec_module.helper = lambda: None  # type: ignore[attr-defined]  # not a hook
    hooks = hook_names(spec_module, project="madeup")
    assert hooks == ["madeup_first", "madeup_second"]
    sources = ["def test_hook_madeup_first() -> None:\n    pass\n", "# def test_hook_madeup_secondary"]
    assert untested(hooks, sources) == ["madeup_second"]
    assert undocumented(hooks, ["`madeup_second` is called ...", "madeup_firstly"]) == ["madeup_first"]


# ------------------------------------------------------------------------------------ one test per hook


def cohort_of(ages: list[int]) -> Cohort:
    return cohort_from_rows({"patient_id": f"p{i}", "age": age} for i, age in enumerate(ages))


class Counter:
    """A plugin object with two analyses: the number of patients and their summed age."""

    COUNT = AnalysisInfo(id="count", title="Count", description="patients")
    AGES = AnalysisInfo(id="ages", title="Ages", description="sum of ages", default_parameters={"scale": 1})

    @hookimpl
    def fhir_pts_describe_analyses(self) -> list[AnalysisInfo]:
        return [self.COUNT, self.AGES]

    @hookimpl
    def fhir_pts_run_analysis(
        self, analysis: AnalysisInfo, cohort: Cohort, parameters: Mapping[str, Any]
    ) -> AnalysisResult | None:
        if analysis.id == self.COUNT.id:
            return AnalysisResult(statistics=[Statistic("patients", float(len(cohort)))])
        if analysis.id == self.AGES.id:
            total = float(cohort.patients["age"].sum()) * parameters["scale"]
            return AnalysisResult(statistics=[Statistic("sum", total, n=len(cohort))])
        return None


class Other:
    """A second plugin that answers only its own analysis."""

    INFO = AnalysisInfo(id="other", title="Other", description="always 42")

    @hookimpl
    def fhir_pts_describe_analyses(self) -> list[AnalysisInfo]:
        return [self.INFO]

    @hookimpl
    def fhir_pts_run_analysis(self, analysis: AnalysisInfo) -> AnalysisResult | None:  # a subset of the args
        return AnalysisResult(statistics=[Statistic("x", 42.0)]) if analysis.id == self.INFO.id else None


def test_hook_fhir_pts_describe_analyses() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Counter(), name="counter")
    pm.register(Other(), name="other")
    answers = pm.hook.fhir_pts_describe_analyses(instruments=[])  # not firstresult: one list per plugin
    assert sorted(info.id for infos in answers for info in infos) == ["ages", "count", "other"]
    assert not pm.hook.fhir_pts_describe_analyses.spec.opts["firstresult"]
    assert pm.hook.fhir_pts_describe_analyses.spec.argnames == ("instruments",)
    # the built-in plugins answer it with their AnalysisInfos, ids unique across plugins; the score measures
    # follow the instruments they are given
    builtins = get_plugin_manager(allow=["descriptive", "patency", "scores", "regression"])
    instruments = list(instruments_of(builtins))
    ids = [info.id for infos in builtins.hook.fhir_pts_describe_analyses(instruments=instruments) for info in infos]
    assert len(ids) == len(set(ids)) == 11
    assert "technical-success" in ids
    toy = replace(instruments[1], id="toy", questionnaires=("https://example.org/Questionnaire/toy",), total_codes=())
    ids = [i.id for infos in builtins.hook.fhir_pts_describe_analyses(instruments=[toy]) for i in infos]
    assert "toy" in ids and "toy-gain-regression" in ids and "villalta" not in ids


def test_hook_fhir_pts_instruments() -> None:
    # the built-ins come from the same hook, registered by import: present with no entry point loaded
    pm = get_plugin_manager(load_entry_points=False)
    assert [i.id for infos in pm.hook.fhir_pts_instruments() for i in infos] == ["villalta", "civiq20"]
    assert pm.hook.fhir_pts_instruments.spec.argnames == ()
    assert not pm.hook.fhir_pts_instruments.spec.opts["firstresult"]

    class Toy:
        @hookimpl
        def fhir_pts_instruments(self) -> list[Instrument]:
            return [
                Instrument(
                    id="toy",
                    title="Toy",
                    questionnaires=("https://example.org/Questionnaire/toy",),
                    items=("a", "b"),
                    item_range=(0, 2),
                    score=SummedScore("Toy", ("a", "b"), (0, 4)),
                    total_range=(0, 4),
                )
            ]

    pm.register(Toy(), name="toy-plugin")
    assert [(i.id, name) for i, name in list_instruments(pm)] == [
        ("villalta", "instruments"),
        ("civiq20", "instruments"),
        ("toy", "toy-plugin"),
    ]


def test_hook_fhir_pts_run_analysis() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Counter(), name="counter")
    pm.register(Other(), name="other")
    hook = pm.hook.fhir_pts_run_analysis
    assert hook.spec.opts["firstresult"]
    assert hook.spec.argnames == ("analysis", "cohort", "parameters")
    cohort = cohort_of([40, 62, 51])
    ages = hook(analysis=Counter.AGES, cohort=cohort, parameters={"scale": 2})
    assert ages.statistic("sum").value == 2 * (40 + 62 + 51) and ages.statistic("sum").n == 3
    assert hook(analysis=Counter.COUNT, cohort=cohort, parameters={}).statistic("patients").value == 3
    assert hook(analysis=Other.INFO, cohort=cohort, parameters={}).statistic("x").value == 42
    unknown = AnalysisInfo(id="nobody", title="t", description="d")
    assert hook(analysis=unknown, cohort=cohort, parameters={}) is None


@pytest.mark.parametrize("bad", ["fhir_pts_describe_analysis", "fhir_pts_run"])
def test_an_implementation_of_no_hook_is_refused(bad: str) -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    plugin = types.ModuleType("typo_plugin")
    setattr(plugin, bad, hookimpl(lambda: []))
    pm.register(plugin, name="typo")
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()
