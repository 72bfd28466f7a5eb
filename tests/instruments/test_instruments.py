"""An instrument declared by a plugin flows through every layer: adapters, cohort, analyses, validate, report.

The toy instrument lives on a foreign host (so the NDJSON pre-filter must learn it), answers with codings of its
own system (mapped by ``answer_values``), has a total-score Observation code, its own 3-month window (day 180)
and a higher-is-better score.
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pandas as pd
import pytest

from fhir_pts import hookimpl
from fhir_pts.cohort.model import COHORT_COLUMNS, cohort_columns
from fhir_pts.instruments import Answers, Instrument, InstrumentIndex, SummedScore, Unscorable, answer_values_of
from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.pipeline import load_cohort
from fhir_pts.plugin_manager import PluginWarning, get_plugin_manager, list_instruments, run_analyses
from fhir_pts.synth import resources as r
from fhir_pts.synth.writer import write_ndjson
from fhir_pts.validate import validate
from fhir_pts.vocabulary import Vocabulary
from tests.instruments.toy import INSTRUMENTS, TOY, ToyPlugin


def toy_resources() -> list[dict]:
    out: list[dict] = []
    cut = dt.date(2022, 1, 1)
    for k in range(4):
        pid = f"t{k}"
        day0 = dt.date(2021, 1, 4) + dt.timedelta(days=k)
        out.append(r.patient(pid, "female", dt.date(1960 + k, 5, 1), last_updated=cut))
        sites = r.body_sites(["common_iliac_vein"] * (1 + k % 2) if k % 2 == 0 else ["common_iliac_vein",
                             "external_iliac_vein"], "left")  # fmt: skip
        out.append(r.procedure(f"{pid}-s", pid, day0, [r.cpt("37238")], sites=sites, outcome="snomed-success"))
        at = lambda days, day0=day0: day0 + dt.timedelta(days=days)  # noqa: E731
        base = [("a", 1 + k % 2), ("b", 2), ("c", 1)]
        out.append(r.instrument_response(TOY, f"{pid}-b", pid, at(-5), base))
        out.append(r.instrument_response(TOY, f"{pid}-91", pid, at(91), [("a", 4), ("b", 4), ("c", 4)]))  # not 3 mo
        follow = [("a", 3), ("b", 3 + k % 2), ("c", 2 + k)] if k < 3 else [("a", 3), ("c", 4)]  # t3: b imputed
        out.append(r.instrument_response(TOY, f"{pid}-180", pid, at(178), follow))
    out.append(r.total_observation(TOY, "t0-total", "t0", dt.date(2021, 1, 4) - dt.timedelta(days=20), 7))
    return out


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("toy") / "in"
    write_ndjson(toy_resources(), folder)
    return folder


def test_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="id 'Bad-Id'"):
        Instrument(id="Bad-Id", title="x", questionnaires=("u",), items=("a",), item_range=(0, 1),
                   score=SummedScore("x", ("a",), (0, 1)), total_range=(0, 1))  # fmt: skip
    assert pickle.loads(pickle.dumps(TOY)) == TOY  # sent to worker processes


def test_summed_score_missing_item_rule_imputation_and_classes() -> None:
    score = TOY.score
    assert score(Answers({"a": 1, "b": 2, "c": 1})).total == 4
    assert score(Answers({"a": 4, "b": 4, "c": 4})).values == {"class": "high"}
    imputed = score(Answers({"a": 3, "c": 4}))
    assert imputed.total == pytest.approx(3 + 4 + 3.5) and "'b' missing: imputed" in imputed.warnings[0]
    with pytest.raises(Unscorable, match="'b, c'"):
        score(Answers({"a": 3}))
    assert score(Answers({}, total=7.5)).total == 7.5
    with pytest.raises(Unscorable, match="expected a number 3-12"):
        score(Answers({}, total=2))


def test_answer_values_read_from_a_questionnaires_item_weights() -> None:
    from fhir_pts.instruments.builtin import VILLALTA

    assert VILLALTA.questionnaire is not None
    values = answer_values_of(VILLALTA.questionnaire)
    assert values["pain"] == {("", "0"): 0, ("", "1"): 1, ("", "2"): 2, ("", "3"): 3}


def test_cohort_columns_and_values_follow_the_declaration(toy_files: Path) -> None:
    cohort = load_cohort([toy_files], workers=2, instruments=INSTRUMENTS)  # parallel reading: specs pickled
    frame = cohort.patients
    assert [c.name for c in cohort_columns(INSTRUMENTS)] == list(frame.columns)
    assert list(frame.columns[: len(COHORT_COLUMNS)]) == [c.name for c in COHORT_COLUMNS]
    toy = frame.set_index("patient_id")
    # baselines: the latest in [-30, 0] is the response at day -5 (t0's total at day -20 is earlier)
    assert toy["baseline_toy"].tolist() == [4, 5, 4, 5]
    assert toy["baseline_toy_day"].tolist() == [-5] * 4
    # 3 months by the instrument's own window: day 178 (the day-91 response is outside [150, 210])
    assert toy["followup_toy_day"].tolist() == [178] * 4
    assert toy["followup_toy"].tolist() == pytest.approx([8, 10, 10, 10.5])
    assert toy["toy_gain"].tolist() == pytest.approx([-4, -5, -6, -5.5])
    assert str(frame["baseline_toy"].dtype) == "Float64"
    assert cohort.flow["toy_pairs"] == 4
    warned = [p for p in cohort.problems if p.resource_id == "t3-180"]
    assert [p.severity for p in warned] == ["warning", "warning"]  # the adapter's missing item, the imputation
    description = {c.name: c.description for c in cohort_columns(INSTRUMENTS)}["toy_gain"]
    assert description == "baseline - 3-month Toy score (positive = worsening)"


def test_total_observation_stands_in_for_a_response(toy_files: Path, tmp_path: Path) -> None:
    only_total = [res for res in toy_resources() if not res["id"].startswith("t0-b")]
    write_ndjson(only_total, tmp_path / "in")
    cohort = load_cohort([tmp_path / "in"], instruments=INSTRUMENTS)
    row = cohort.patients.set_index("patient_id").loc["t0"]
    assert (row["baseline_toy"], row["baseline_toy_day"], row["baseline_toy_resource_id"]) == (7, -20, "t0-total")


def test_without_the_plugin_its_resources_are_not_read(toy_files: Path) -> None:
    cohort = load_cohort([toy_files], instruments=BUILTIN_INSTRUMENTS)
    assert list(cohort.patients.columns) == [c.name for c in COHORT_COLUMNS]
    assert not [p for p in cohort.problems if p.resource_type == "QuestionnaireResponse"]


def test_vocabulary_asks_servers_for_the_total_codes() -> None:
    vocabulary = Vocabulary().with_instruments(INSTRUMENTS)
    assert TOY.total_codes[0] in vocabulary.observation_codings
    assert TOY.total_codes[0] not in Vocabulary().observation_codings
    assert pickle.loads(pickle.dumps(vocabulary)).instrument_index == InstrumentIndex.of(INSTRUMENTS)


def test_analyses_exist_for_the_instrument(toy_files: Path) -> None:
    pm = get_plugin_manager(load_entry_points=False, allow=())
    pm.register(ToyPlugin(), name="toy-plugin")
    for name in ("descriptive", "scores", "regression"):
        pm.register(__import__(f"fhir_pts.analyses.{name}", fromlist=["x"]), name=name)
    cohort = load_cohort([toy_files], instruments=[i for i, _ in list_instruments(pm)])
    outcomes = {o.info.id: o for o in run_analyses(pm, cohort, ["toy", "toy-gain-regression"])}
    paired = outcomes["toy"].result
    assert paired is not None and outcomes["toy"].info.improvement_notation == "increase"
    values = {s.name: s.value for s in paired.statistics}
    assert values["n_pairs"] == 4 and values["gain_mean"] == pytest.approx(-5.125)
    assert values["baseline_class_low"] == 4 and values["followup_class_high"] == 4
    # Wilcoxon: differences all negative (4 of 4): V = 0
    assert values["wilcoxon"] == 0
    regression = outcomes["toy-gain-regression"]
    assert regression.result is not None, regression.error
    assert regression.info.default_parameters["terms"] == ("baseline_toy", "age", "stented_segments")


def test_a_broken_or_duplicate_instrument_is_left_out_with_its_plugin_named() -> None:
    class Broken:
        @hookimpl
        def fhir_pts_instruments(self) -> list[Instrument]:
            raise RuntimeError("cannot declare")

    class Duplicate:
        @hookimpl
        def fhir_pts_instruments(self) -> list[object]:
            return [TOY, "not an instrument"]

    class Again:
        @hookimpl
        def fhir_pts_instruments(self) -> list[Instrument]:
            return [TOY]

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(ToyPlugin(), name="toy-plugin")
    pm.register(Broken(), name="broken")
    pm.register(Duplicate(), name="duplicate")
    pm.register(Again(), name="again")
    with pytest.warns(PluginWarning) as caught:
        found = [(i.id, name) for i, name in list_instruments(pm)]
    assert found == [("villalta", "instruments"), ("civiq20", "instruments"), ("toy", "toy-plugin")]
    messages = " | ".join(str(w.message) for w in caught)
    assert "plugin 'broken' left out" in messages and "RuntimeError: cannot declare" in messages
    assert "plugin 'duplicate' left out" in messages and "not Instrument" in messages
    assert "instrument 'toy' of plugin 'again' left out: id 'toy' (declared by 'toy-plugin')" in messages


def test_builtins_cannot_be_blocked() -> None:
    with pytest.warns(PluginWarning, match="built-in plugin 'instruments' cannot be blocked"):
        pm = get_plugin_manager(allow=["descriptive"], block=["instruments"])
    assert [i.id for i, _ in list_instruments(pm)] == ["villalta", "civiq20"]


def test_validate_explains_the_instruments_inclusions(toy_files: Path) -> None:
    report = validate([toy_files], instruments=INSTRUMENTS)
    assert report.analyses[-2:] == ("toy", "toy-gain-regression")
    t0 = next(p for p in report.patients if p.patient_id == "t0")
    assert t0.status("toy").status == "in"
    villalta = t0.status("villalta")
    assert villalta.status == "out" and "baseline Villalta missing" in villalta.reasons[0]
    counts = report.analysis_counts()
    assert counts["toy"] == {"in": 4, "out": 0}
    assert "toy" in report.render_text()


def test_report_shows_the_instrument(toy_files: Path, tmp_path: Path) -> None:
    from fhir_pts.pipeline import write_run

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(ToyPlugin(), name="toy-plugin")
    for name in ("descriptive", "patency", "scores", "regression"):
        pm.register(__import__(f"fhir_pts.analyses.{name}", fromlist=["x"]), name=name)
    cohort = load_cohort([toy_files], instruments=INSTRUMENTS)
    outcomes = run_analyses(pm, cohort)
    write_run(tmp_path / "out", cohort, outcomes, inputs=[toy_files])
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Villalta, CIVIQ-20 and Toy before and 3 months after stenting" in html
    assert "Toy gain" in html and "Baseline Toy (per point)" in html
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert {"toy", "toy-gain-regression"} <= set(results["measure"])
