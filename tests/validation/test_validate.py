"""``fhir-pts validate`` and :mod:`fhir_pts.validate`: planted defects are named, a clean cohort passes.

Three levels:

- a hand-built cohort (four patients, every date relative to day 0) whose per-patient in / out reasons are
  written out by hand;
- a random synthetic cohort (``fhir-pts synth``) with eight PLANTED defects: every one is named by resource id
  and reason, none was named before planting, and the command exits 1;
- the paper cohort: clean, exit 0; with one planted defect, exit 1.

:func:`check_questionnaire_response` has its own small cases here; its run over every response the generator
writes is ``tests/synth/test_questionnaire_responses_valid.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_pts import codes
from fhir_pts.adapters.questionnaire_response import flatten_items
from fhir_pts.cli import main
from fhir_pts.conformance import questionnaire
from fhir_pts.synth import resources as r
from fhir_pts.synth import synthesize
from fhir_pts.validate import ANALYSES, ROW_COLUMNS, ValidationReport, check_questionnaire_response, validate

Resource = dict[str, Any]
DAY0 = dt.date(2020, 3, 2)


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


# --- small factories -----------------------------------------------------------------------------------------------


def stent(
    pid: str, rid: str, on: int = 0, *, outcome: str | None = "snomed-success", status: str = "completed"
) -> Resource:
    return r.procedure(
        rid, pid, day(on), [r.cpt("37238")], status=status, outcome=outcome,
        sites=r.body_sites(["common_iliac_vein"], "left"),
    )  # fmt: skip


def villalta(pid: str, rid: str, on: int, items: list[int] | None = None) -> Resource:
    return r.villalta_response(rid, pid, day(on), items or [1] * 11, False)


def civiq(pid: str, rid: str, on: int, missing: tuple[int, ...] = ()) -> Resource:
    return r.civiq_response(rid, pid, day(on), [2] * 20, missing=missing)


def finding(pid: str, rid: str, on: int, status: str = "patent") -> Resource:
    return r.patency_observation(rid, pid, day(on), finding=status)  # type: ignore[arg-type]


def write_bundle(path: Path, resources: list[Resource]) -> Path:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": x} for x in resources]}
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def hand_cohort() -> list[Resource]:
    """Four patients:

    - ``p1``: complete but for a baseline Villalta whose ``pain`` is 7 (out of range): out of villalta and both
      regressions (baseline_villalta is a covariate of both); in civiq20.
    - ``p2``: index procedure without outcome, no birthDate, no follow-up imaging, no scores at all.
    - ``p3``: its only stenting is ``in-progress``: no index procedure.
    - ``p4``: complete, but its scores are at day -120 (outside [-90, 0]) and day 91.
    """
    birth = dt.date(1970, 5, 5)
    p1 = [
        r.patient("p1", "female", birth, last_updated=day(0)),
        stent("p1", "p1-stent", 0),
        villalta("p1", "p1-v0", -10, [7] + [1] * 10),
        villalta("p1", "p1-v3", 90),
        civiq("p1", "p1-c0", -10),
        civiq("p1", "p1-c3", 90),
        finding("p1", "p1-f1", 180),
    ]
    p2_patient = r.patient("p2", "male", birth, last_updated=day(0))
    del p2_patient["birthDate"]
    p2 = [p2_patient, stent("p2", "p2-stent", 0, outcome=None)]
    p3 = [r.patient("p3", "female", birth, last_updated=day(0)), stent("p3", "p3-stent", 0, status="in-progress")]
    p4 = [
        r.patient("p4", "male", birth, last_updated=day(0)),
        stent("p4", "p4-stent", 0),
        villalta("p4", "p4-v0", -120),
        villalta("p4", "p4-v3", 91),
        civiq("p4", "p4-c0", -120),
        civiq("p4", "p4-c3", 91),
        finding("p4", "p4-f1", 365, "occluded"),
    ]
    return [*p1, *p2, *p3, *p4]


# --- per patient, by hand ------------------------------------------------------------------------------------------


@pytest.fixture
def hand_report(tmp_path: Path) -> ValidationReport:
    return validate([write_bundle(tmp_path / "cohort.json", hand_cohort())])


def statuses(report: ValidationReport, pid: str) -> dict[str, str]:
    patient = next(p for p in report.patients if p.patient_id == pid)
    return {s.analysis: s.status for s in patient.statuses}


def reasons(report: ValidationReport, pid: str, analysis: str) -> str:
    patient = next(p for p in report.patients if p.patient_id == pid)
    return " | ".join(patient.status(analysis).reasons)


def test_complete_patient_but_for_one_out_of_range_item(hand_report: ValidationReport) -> None:
    out = {a for a, s in statuses(hand_report, "p1").items() if s == "out"}
    assert out == {"villalta", "villalta-gain-regression", "civiq20-gain-regression"}
    why = reasons(hand_report, "p1", "villalta")
    assert why.startswith("baseline Villalta missing: QuestionnaireResponse/p1-v0 (day -10) not scorable:")
    assert "out of range" in why and "'pain'" in why
    assert "missing villalta_gain, baseline_villalta" in reasons(hand_report, "p1", "villalta-gain-regression")
    assert "missing baseline_villalta" in reasons(hand_report, "p1", "civiq20-gain-regression")


def test_unknown_outcome_no_age_no_imaging_no_scores(hand_report: ValidationReport) -> None:
    assert statuses(hand_report, "p2") == {
        "cohort": "in", "technical-success": "out", "major-complications": "in", "imaging-follow-up": "in",
        "primary-patency": "in", "primary-assisted-patency": "in", "secondary-patency": "in",
        "villalta": "out", "civiq20": "out", "villalta-gain-regression": "out", "civiq20-gain-regression": "out",
    }  # fmt: skip
    assert "technical outcome unknown" in reasons(hand_report, "p2", "technical-success")
    patient = next(p for p in hand_report.patients if p.patient_id == "p2")
    assert patient.status("secondary-patency").reasons == ("no follow-up imaging: censored at day 0",)
    assert "age missing" in " ".join(patient.status("cohort").reasons)
    assert reasons(hand_report, "p2", "villalta") == (
        "baseline Villalta missing: no assessment in window [-90, 0] | "
        "3-month Villalta missing: no assessment in window [60, 150]"
    )
    assert reasons(hand_report, "p2", "villalta-gain-regression") == (
        "not a complete case: missing villalta_gain, baseline_villalta, baseline_civiq20, age | "
        "baseline_villalta: see villalta | baseline_civiq20: see civiq20 | age: no usable birthDate"
    )


def test_no_index_procedure_names_the_ignored_procedure(hand_report: ValidationReport) -> None:
    assert set(statuses(hand_report, "p3").values()) == {"out"}
    why = reasons(hand_report, "p3", "cohort")
    assert why.startswith("no index procedure")
    assert "Procedure/p3-stent status" in why and "in-progress" in why


def test_assessment_outside_the_window_says_where_it_is(hand_report: ValidationReport) -> None:
    assert reasons(hand_report, "p4", "villalta") == (
        "baseline Villalta missing: no assessment in window [-90, 0] (assessments at day -120, 91)"
    )
    assert statuses(hand_report, "p4")["civiq20"] == "out"
    assert next(p for p in hand_report.patients if p.patient_id == "p4").status("primary-patency").reasons == (
        "patency lost at day 365",
    )


def test_summary_counts_and_verdict(hand_report: ValidationReport) -> None:
    counts = hand_report.analysis_counts()
    assert counts["cohort"] == {"in": 3, "out": 1}
    assert counts["technical-success"] == {"in": 2, "out": 2}
    assert counts["villalta"] == {"in": 0, "out": 4}
    assert counts["civiq20"] == {"in": 1, "out": 3}
    assert hand_report.exit_status == 1
    # p1-v0 (answer 7) and p3-stent (in-progress) fail their checks; nothing else does.
    assert {v.resource_id for v in hand_report.violations} == {"p1-v0", "p3-stent"}
    text = hand_report.render_text()
    assert text.splitlines()[-1] == hand_report.verdict()
    assert text.splitlines()[-1].startswith("validate: FAILED: 2 resources failed a check")


def test_rows_json_and_csv_agree(hand_report: ValidationReport) -> None:
    rows = hand_report.to_rows()
    assert all(tuple(row) == ROW_COLUMNS for row in rows)
    analysis_rows = [row for row in rows if row["kind"] == "analysis"]
    assert len(analysis_rows) == 4 * len(ANALYSES)
    assert rows[-1]["kind"] == "summary" and rows[-1]["status"] == "failed"
    parsed = list(csv.DictReader(io.StringIO(hand_report.render_csv())))
    assert len(parsed) == len(rows)
    document = json.loads(hand_report.render("json"))
    assert document["summary"]["exit_status"] == 1
    assert document["patients"][2]["analyses"]["cohort"]["status"] == "out"
    assert document["summary"]["analyses"]["cohort"] == {"in": 3, "out": 1}


def test_no_names_in_any_output(tmp_path: Path) -> None:
    resources = hand_cohort()
    resources[0]["name"] = [{"family": "Zyxwvutson", "given": ["Qwertina"]}]
    report = validate([write_bundle(tmp_path / "named.json", resources)])
    for text in (report.render_text(), report.render_csv(), report.render("json")):
        assert "Zyxwvutson" not in text and "Qwertina" not in text


# --- QuestionnaireResponse vs Questionnaire -------------------------------------------------------------------------


def test_conforming_responses_pass_in_both_encodings() -> None:
    for encoding in ("integer", "coding"):
        qr = r.villalta_response("v", "p", DAY0, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2], True, encoding=encoding)
        assert check_questionnaire_response(qr, questionnaire("villalta")) == []
        qr = r.civiq_response("c", "p", DAY0, [1, 2, 3, 4, 5] * 4, encoding=encoding, questionnaire_version="1.0")
        assert check_questionnaire_response(qr, questionnaire("civiq-20")) == []


def _item(qr: Resource, link_id: str) -> Resource:
    return next(item for _, item in flatten_items(qr["item"]) if item["linkId"] == link_id)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda qr: _item(qr, "pain").update(answer=[{"valueInteger": 4}]),
            "item 'pain': valueInteger 4 is not an answer option (0, 1, 2, 3)",
        ),
        (
            lambda qr: _item(qr, "pain").update(answer=[{"valueCoding": {"code": "9"}}]),
            "item 'pain': valueCoding code '9' is not an answer option (0, 1, 2, 3)",
        ),
        (
            lambda qr: _item(qr, "pain").update(answer=[{"valueString": "1"}]),
            "item 'pain': valueString does not match item type 'choice' (expected valueCoding)",
        ),
        (
            lambda qr: _item(qr, "ulcer").update(answer=[{"valueInteger": 1}]),
            "item 'ulcer': valueInteger does not match item type 'boolean' (expected valueBoolean)",
        ),
        (
            lambda qr: _item(qr, "pain").update(answer=[{"valueInteger": 1}, {"valueInteger": 2}]),
            "item 'pain': 2 answers, but the item does not repeat",
        ),
        (
            lambda qr: qr["item"].append({"linkId": "bogus", "answer": [{"valueInteger": 1}]}),
            "item 'bogus': linkId is not in Questionnaire villalta",
        ),
        (
            lambda qr: qr["item"].append({"linkId": "cramps", "answer": [{"valueInteger": 1}]}),
            "item 'cramps': answered more than once",
        ),
        (lambda qr: qr["item"].remove(_item(qr, "redness")), "item 'redness': required but not answered"),
        (
            lambda qr: qr.update(questionnaire=f"{codes.VILLALTA_QUESTIONNAIRE}|2.0"),
            "questionnaire version '2.0' is not the packaged '1.0'",
        ),
    ],
)
def test_each_violation_is_reported(edit: Callable[[Resource], None], expected: str) -> None:
    qr = r.villalta_response("v", "p", DAY0, [1] * 11, False)
    edit(qr)
    assert check_questionnaire_response(qr, questionnaire("villalta")) == [expected]


def test_required_applies_to_completed_responses_only_and_groups_are_tolerated() -> None:
    qr = r.civiq_response("c", "p", DAY0, [3] * 20, missing=(0,), nested=True, status="in-progress")
    assert check_questionnaire_response(qr, questionnaire("civiq-20")) == []
    qr["status"] = "completed"
    assert check_questionnaire_response(qr, questionnaire("civiq-20")) == ["item 'q1': required but not answered"]
    strict = check_questionnaire_response(qr, questionnaire("civiq-20"), strict_groups=True)
    assert "item 'pain': group linkId is not in Questionnaire civiq-20" in strict


# --- planted defects in a random synthetic cohort -------------------------------------------------------------------


def read_ndjson(path: Path) -> list[Resource]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_ndjson(path: Path, resources: list[Resource]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in resources), encoding="utf-8")


def first(resources: list[Resource], predicate: Callable[[Resource], bool], used: set[str]) -> Resource:
    for resource in resources:
        if resource["id"] not in used and predicate(resource):
            used.add(resource["id"])
            return resource
    raise AssertionError("no resource to plant a defect in")


def without_items(items: list[Resource], link_ids: set[str]) -> list[Resource]:
    """The items (nested group items included) without those whose linkId is in ``link_ids``."""
    kept = []
    for item in items:
        if item["linkId"] in link_ids:
            continue
        if "item" in item:
            item = {**item, "item": without_items(item["item"], link_ids)}
        kept.append(item)
    return kept


def is_response(canonical: str) -> Callable[[Resource], bool]:
    return lambda x: x["questionnaire"].split("|")[0] == canonical and x["status"] == "completed"


def is_finding(x: Resource) -> bool:
    return any(c["code"] == "stent-patency" for c in x["code"]["coding"]) and x["status"] == "final"


def is_index_stenting(x: Resource) -> bool:
    return x["status"] == "completed" and any(
        (c["system"], c["code"]) in codes.VENOUS_STENTING for c in x["code"]["coding"]
    ) and ("performedDateTime" in x or "performedPeriod" in x)  # fmt: skip


def stenting_day(procedures: list[Resource], pid: str) -> dt.date:
    days = [
        dt.date.fromisoformat((p.get("performedDateTime") or p["performedPeriod"]["start"])[:10])
        for p in procedures
        if p["subject"]["reference"] == f"Patient/{pid}" and is_index_stenting(p)
    ]
    return min(days)


def plant_defects(folder: Path, named_before: str) -> dict[str, tuple[str, ...]]:
    """Plant eight defects in a synthetic NDJSON cohort, in resources the report ``named_before`` does not name;
    return resource id (or file:line) → fragments its report must name."""
    used: set[str] = {
        x["id"]
        for name in ("QuestionnaireResponse", "Observation", "Procedure")
        for x in read_ndjson(folder / f"{name}.ndjson")
        if any(lines_naming(named_before, x["id"]))
    }
    responses = read_ndjson(folder / "QuestionnaireResponse.ndjson")
    observations = read_ndjson(folder / "Observation.ndjson")
    procedures = read_ndjson(folder / "Procedure.ndjson")
    planted: dict[str, tuple[str, ...]] = {}

    qr = first(responses, is_response(codes.VILLALTA_QUESTIONNAIRE), used)
    _item(qr, "heaviness")["answer"] = [{"valueInteger": 9}]
    planted[qr["id"]] = ("item[heaviness]", "out of range", "valueInteger 9 is not an answer option")

    qr = first(responses, lambda x: is_response(codes.CIVIQ20_QUESTIONNAIRE)(x) and len(
        [i for _, i in flatten_items(x["item"]) if i["linkId"].startswith("q")]) == 20, used)  # fmt: skip
    qr["item"] = without_items(qr["item"], {"q5", "q6", "q7"})
    planted[qr["id"]] = ("3 items missing", "item 'q5': required but not answered")

    qr = first(responses, is_response(codes.VILLALTA_QUESTIONNAIRE), used)
    qr["item"].append({"linkId": "swelling-score", "answer": [{"valueInteger": 2}]})
    planted[qr["id"]] = ("unknown linkId 'swelling-score'", "item 'swelling-score': linkId is not in Questionnaire")

    qr = first(responses, is_response(codes.CIVIQ20_QUESTIONNAIRE), used)
    qr["subject"] = {"reference": "Patient/ghost-0001"}
    planted[qr["id"]] = ("refers to 'Patient/ghost-0001', which is not in the data",)

    procedure = first(procedures, is_index_stenting, used)
    procedure["status"] = "in-progress"
    planted[procedure["id"]] = ("status 'in-progress'", "Procedure.status must be 'completed'")

    observation = first(observations, is_finding, used)
    observation.pop("effectiveDateTime", None)
    observation.pop("effectivePeriod", None)
    planted[observation["id"]] = ("missing date",)

    pids_with_index = {p["subject"]["reference"].split("/")[1] for p in procedures if is_index_stenting(p)}
    observation = first(
        observations, lambda x: is_finding(x) and x["subject"]["reference"].split("/")[1] in pids_with_index, used
    )
    before = stenting_day(procedures, observation["subject"]["reference"].split("/")[1]) - dt.timedelta(days=12)
    observation.pop("effectivePeriod", None)
    observation["effectiveDateTime"] = f"{before.isoformat()}T10:00:00Z"
    planted[observation["id"]] = ("patency finding dated day '-12'",)

    write_ndjson(folder / "QuestionnaireResponse.ndjson", responses)
    write_ndjson(folder / "Procedure.ndjson", procedures)
    lines = (folder / "Observation.ndjson").read_text(encoding="utf-8")
    write_ndjson(folder / "Observation.ndjson", observations)
    with (folder / "Observation.ndjson").open("a", encoding="utf-8") as stream:
        stream.write('{"resourceType": "Observation", "id": "broken-line", \n')
    malformed_line = len(observations) + 1
    assert lines  # the file existed before planting
    planted[f"Observation.ndjson:{malformed_line}"] = ("line is not a JSON object",)
    return planted


def lines_naming(text: str, key: str) -> Iterator[str]:
    """The lines of ``text`` naming ``key`` (a resource id or ``file:line``) as a whole word."""
    pattern = re.compile(rf"(?<![\w-]){re.escape(key)}(?![\w-])")
    return (line for line in text.splitlines() if pattern.search(line))


def test_every_planted_defect_is_named_and_the_command_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "cohort"
    synthesize(folder, patients=16, seed=11, fmt="ndjson", noise_per_patient=2)
    before = validate([folder]).render_text()
    planted = plant_defects(folder, before)
    for key in planted:
        assert not any(lines_naming(before, key)), f"{key} was named before planting"

    status = main(["validate", str(folder)])
    text = capsys.readouterr().out
    assert status == 1
    for key, fragments in planted.items():
        named = "\n".join(lines_naming(text, key))
        for fragment in fragments:
            assert fragment in named, f"{key}: {fragment!r} not in\n{named}"
    assert text.splitlines()[-1].startswith("validate: FAILED:")


# --- the paper cohort ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paper")
    synthesize(folder, fmt="ndjson")
    return folder


def test_paper_cohort_is_clean(paper_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(paper_folder)]) == 0
    text = capsys.readouterr().out
    last = text.splitlines()[-1]
    assert last.startswith("validate: OK:") and "none failed; no record skipped" in last
    # the day-0 completion-imaging findings are listed as expected, not as failures
    assert "expected: Observation/pts-paper-01-pat-d0" in text
    assert "  cohort                    in     42  out      0" in text


def test_paper_cohort_with_one_planted_defect_fails(
    paper_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    for path in paper_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    responses = read_ndjson(folder / "QuestionnaireResponse.ndjson")
    _item(responses[0], "pain")["answer"] = [{"valueInteger": -1}]
    write_ndjson(folder / "QuestionnaireResponse.ndjson", responses)
    out = tmp_path / "report.json"
    assert main(["validate", str(folder), "--format", "json", "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().startswith("validate: FAILED: 1 resources failed a check")
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [v["resource_id"] for v in document["violations"]] == [responses[0]["id"]]


def test_unusable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.ndjson")]) == 2
    assert main(["validate"]) == 2
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert main(["validate", str(tmp_path / "bad.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    for option in ("--write-back",):  # run's option only: validate writes nothing back
        with pytest.raises(SystemExit) as exited:
            main(["validate", "--server", "http://127.0.0.1:9/fhir", option])
        assert exited.value.code == 2
        assert f"unrecognized arguments: {option}" in capsys.readouterr().err


# --- --server: fetched into a temporary raw folder ------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sekmet-fhir of this module's own, loaded with :func:`hand_cohort` in one transaction."""
    from fhir_pts.sources.server.http import check
    from tests.sources.server.cohort_factory import transaction
    from tests.sources.server.sekmet_harness import own_server, smart_session

    with own_server(tmp_path_factory.mktemp("sekmet-validate")) as info:
        bundle = transaction(hand_cohort())
        check(smart_session(info).post(info.base_url, json=bundle, headers={"Content-Type": "application/fhir+json"}))
        yield info


@pytest.mark.server
def test_validate_a_server(
    loaded_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("FHIR_PTS_CLIENT_ID", loaded_server.full_rs384.client_id)
    monkeypatch.setenv("FHIR_PTS_PRIVATE_KEY", str(loaded_server.full_rs384.private_key))
    out = tmp_path / "report.json"
    assert main(["validate", "--server", loaded_server.base_url, "--format", "json", "--out", str(out)]) == 1
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["summary"]["inputs"] == [loaded_server.base_url]
    assert document["summary"]["analyses"]["cohort"] == {"in": 3, "out": 1}
    patients = {p["patient_id"]: p for p in document["patients"]}
    assert patients["p3"]["analyses"]["cohort"]["status"] == "out"
    assert {v["resource_id"] for v in document["violations"]} == {"p1-v0", "p3-stent"}
    assert "eyJ" not in capsys.readouterr().err  # no token printed


def test_validate_asks_the_plugins_once(paper_folder: Path, hook_calls: dict[str, int]) -> None:
    """A whole ``fhir-pts validate`` asks the plugins once for their instruments and once for their analyses
    (as ``run`` does: tests/cli/test_cli.py)."""
    assert main(["validate", str(paper_folder), "-q"]) == 0
    assert hook_calls == {"instruments": 1, "describe": 1}


@pytest.mark.server
def test_validate_a_server_asks_the_plugins_once(
    loaded_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hook_calls: dict[str, int]
) -> None:
    monkeypatch.setenv("FHIR_PTS_CLIENT_ID", loaded_server.full_rs384.client_id)
    monkeypatch.setenv("FHIR_PTS_PRIVATE_KEY", str(loaded_server.full_rs384.private_key))
    out = tmp_path / "report.json"
    assert main(["validate", "--server", loaded_server.base_url, "--format", "json", "--out", str(out), "-q"]) == 1
    assert hook_calls == {"instruments": 1, "describe": 1}


def test_docs_example_is_the_real_output(tmp_path: Path) -> None:
    """docs/validate.md shows the text report of :func:`hand_cohort` verbatim."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "validate.md").read_text(encoding="utf-8")
    block = doc.split("```text\n", 1)[1].split("```", 1)[0]
    command, shown = block.split("\n", 1)
    assert command == "fhir-pts validate cohort.json"
    assert shown == validate([write_bundle(tmp_path / "cohort.json", hand_cohort())]).render_text()


def test_problems_are_grouped_by_reason_with_variable_parts_elided(tmp_path: Path) -> None:
    resources = [
        r.patient("p1", "female", dt.date(1970, 5, 5), last_updated=day(0)),
        stent("p1", "p1-stent", 0),
        civiq("p1", "p1-c0", -10, missing=(2,)),  # q3 unanswered
        civiq("p1", "p1-c3", 90, missing=(6,)),  # q7 unanswered
    ]
    report = validate([write_bundle(tmp_path / "two.json", resources)])
    counts = {(s, t, f, reason): n for s, t, f, reason, n in report.problem_counts()}
    assert counts[("warning", "QuestionnaireResponse", "item", "no answer for … (1 of 20 civiq20 items)")] == 2
    assert report.violation_counts() == [("questionnaire:civiq-20", "item '…': required but not answered", 2)]
    assert report.exit_status == 1  # two responses fail their Questionnaire check, although both are scored


def test_concept_map_makes_a_local_stenting_code_an_index_procedure(tmp_path: Path) -> None:
    local = {"system": "http://hospital.example.org/fhir/CodeSystem/procedures", "code": "VSTENT"}
    procedure = r.procedure("p1-local", "p1", day(0), [local], outcome="snomed-success")
    resources = [r.patient("p1", "female", dt.date(1970, 5, 5), last_updated=day(0)), procedure]
    bundle = write_bundle(tmp_path / "local.json", resources)
    concept_map = {
        "resourceType": "ConceptMap", "id": "local", "status": "active",
        "group": [{"source": local["system"], "target": codes.PTS_SYSTEM, "element": [
            {"code": "VSTENT", "target": [{"code": "venous-stenting", "equivalence": "equivalent"}]}]}],
    }  # fmt: skip
    (tmp_path / "map.json").write_text(json.dumps(concept_map), encoding="utf-8")

    without = validate([bundle])
    assert statuses(without, "p1")["cohort"] == "out"
    with_map = validate([bundle], concept_maps=[tmp_path / "map.json"])
    assert statuses(with_map, "p1")["technical-success"] == "in"
    assert reasons(with_map, "p1", "villalta").startswith("baseline Villalta missing: no assessment in window")
