"""The local engine (collect_facts / collect_from_resources): formats, duplicates, problems, workers, Synthea."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_pts import codes
from fhir_pts.adapters.facts import FactSet
from fhir_pts.engines import local as collect
from fhir_pts.engines import resolve
from fhir_pts.engines.local import collect_facts, collect_from_resources
from fhir_pts.sources.files import InputError, RawResource
from tests.adapters.factories import (
    PTS,
    adverse_event,
    bundle,
    cc,
    civiq_items,
    meta,
    observation,
    patency,
    patient,
    procedure,
    questionnaire_response,
    villalta_items,
)

DATA = Path(__file__).parent.parent / "data"


def vital_sign(rid: str, patient_id: str = "pat1") -> dict:
    return observation(rid, patient_id, code=("http://loinc.org", "8867-4"), valueQuantity={"value": 72})


def study_resources() -> list[dict]:
    """Two patients with every kind of fact, one record problem, and irrelevant resources in between."""
    return [
        patient("pat1"),
        vital_sign("v1"),
        procedure("proc1", "pat1", code=[(codes.CPT, "37238")], body_sites=[(codes.SNOMED, "46027005")]),
        patency("obs1", value="stenosis", method="16310003"),
        {"resourceType": "Encounter", "id": "enc1", "status": "finished"},
        questionnaire_response("qr1", items=villalta_items({"pain": 3})),
        questionnaire_response("qr2", questionnaire=codes.CIVIQ20_QUESTIONNAIRE + "|1", items=civiq_items()),
        observation("tot1", code=codes.VILLALTA_TOTAL, valueInteger=9),
        adverse_event("ae1"),
        patient("pat2", gender="male", birth_date="1961-02-03"),
        procedure("proc2", "pat2", code=[(codes.ICD10PCS, "067D3DZ")], performed="2021-03-04", period=True),
        procedure(
            "proc3", "pat2", code=[(codes.CPT, "37248")], reason_code=[(PTS, "occlusion")], performed="2021-09-01"
        ),
        patency("obs2", patient_id="pat2", percent=100, status="preliminary"),  # reported
        vital_sign("v2", "pat2"),
    ]


def facts_only(facts: FactSet) -> tuple:
    """Everything but the problems' places (file, line differ between formats)."""
    problems = [dataclasses.replace(p, file=None, line=None) for p in facts.problems]
    return (facts.patients, facts.procedures, facts.findings, facts.assessments, facts.adverse_events, problems)


def write_ndjson(path: Path, resources: list[dict], compress: bool = False) -> Path:
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in resources).encode()
    path.write_bytes(gzip.compress(text) if compress else text)
    return path


def test_study_resources_give_the_expected_facts(tmp_path):
    facts = collect_facts([write_ndjson(tmp_path / "export.ndjson", study_resources())])
    assert list(facts.patients) == ["pat1", "pat2"]
    assert [p.resource_id for p in facts.procedures] == ["proc1", "proc2", "proc3"]
    assert [f.resource_id for f in facts.findings] == ["obs1"]
    assert [a.resource_id for a in facts.assessments] == ["qr1", "qr2", "tot1"]
    assert [e.resource_id for e in facts.adverse_events] == ["ae1"]
    [problem] = facts.problems
    assert (problem.resource_type, problem.resource_id, problem.field) == ("Observation", "obs2", "status")
    assert (problem.file, problem.line) == (str(tmp_path / "export.ndjson"), 13)
    assert facts.resources_read == 14


def test_bundle_ndjson_gzip_and_split_folder_give_identical_fact_sets(tmp_path):
    resources = study_resources()
    as_bundle = tmp_path / "bundle.json"
    as_bundle.write_text(json.dumps(bundle(resources, "transaction")))
    as_bundle_gz = tmp_path / "bundle.json.gz"
    as_bundle_gz.write_bytes(gzip.compress(as_bundle.read_bytes()))
    as_nested = tmp_path / "nested.json"
    as_nested.write_text(json.dumps(bundle([bundle(resources[:5], "searchset"), bundle(resources[5:], "batch")])))
    as_ndjson = write_ndjson(tmp_path / "all.ndjson", resources)
    as_gzip = write_ndjson(tmp_path / "all.ndjson.gz", resources, compress=True)
    folder = tmp_path / "folder"
    (folder / "b").mkdir(parents=True)
    write_ndjson(folder / "a.ndjson", resources[:4])
    write_ndjson(folder / "b" / "c.jsonl", resources[4:9])
    (folder / "b" / "d.json").write_text(json.dumps(bundle(resources[9:])))
    (folder / "notes.txt").write_text("not read")

    reference = collect_facts([as_ndjson])
    for source in (as_bundle, as_bundle_gz, as_nested, as_gzip, folder):
        facts = collect_facts([source])
        assert facts_only(facts) == facts_only(reference), source
        assert facts.resources_read == len(resources)
    assert facts_only(collect_from_resources(resources)) == facts_only(reference)
    assert facts_only(collect_from_resources([bundle(resources)])) == facts_only(reference)


def test_problems_carry_file_and_line_in_a_bundle(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle(study_resources())))
    [problem] = collect_facts([path]).problems
    assert (problem.file, problem.line) == (str(path), 13)  # the 13th entry


def _versions(path: Path, *copies: dict) -> Path:
    return write_ndjson(path, list(copies))


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        (meta("10"), meta("9"), "first"),  # numbers: 10 > 9 although "10" < "9" as strings
        (meta("9"), meta("10"), "second"),
        (meta("b"), meta("a"), "first"),  # strings
        (meta("2", "2024-01-01T00:00:00Z"), meta("2", "2023-01-01T00:00:00Z"), "first"),  # same version: lastUpdated
        (meta(None, "2024-01-01T00:00:00Z"), meta(None, "2023-01-01T00:00:00Z"), "first"),
        (meta(None, "2023-01-01T00:00:00Z"), meta(None, "2024-01-01T00:00:00Z"), "second"),
        ({}, {}, "second"),  # read last
        (meta("1"), {}, "second"),
    ],
)
def test_duplicates_resolution(tmp_path, first, second, winner):
    one = procedure(performed="2020-01-01", meta=first)
    two = procedure(performed="2020-02-02", meta=second)
    facts = collect_facts([_versions(tmp_path / "a.ndjson", one), _versions(tmp_path / "b.ndjson", two)])
    [fact] = facts.procedures
    assert fact.day.month == (1 if winner == "first" else 2)
    # the same within one file
    [fact] = collect_facts([_versions(tmp_path / "ab.ndjson", one, two)]).procedures
    assert fact.day.month == (1 if winner == "first" else 2)


def test_only_the_winners_problems_are_kept(tmp_path):
    old_bad = procedure(status="in-progress", meta=meta("1"))
    new_good = procedure(meta=meta("2"))
    facts = collect_facts([_versions(tmp_path / "x.ndjson", new_good, old_bad)])
    # the loser's status problem is not kept; that the copies disagree is (a warning, #18)
    assert len(facts.procedures) == 1 and [(p.field, p.severity) for p in facts.problems] == [("id", "warning")]
    new_bad = procedure(status="entered-in-error", meta=meta("3"))
    facts = collect_facts([_versions(tmp_path / "y.ndjson", new_good, new_bad)])
    assert facts.procedures == [] and [p.field for p in facts.problems] == ["status", "id"]
    assert facts.problems[0].line == 2


def test_later_argument_wins_a_tie(tmp_path):
    a = _versions(tmp_path / "a.ndjson", patient(gender="female"))
    b = _versions(tmp_path / "b.ndjson", patient(gender="male"))
    assert collect_facts([a, b]).patients["pat1"].gender == "male"
    assert collect_facts([b, a]).patients["pat1"].gender == "female"


def test_malformed_lines_are_problems_and_the_run_goes_on(tmp_path):
    path = tmp_path / "broken.ndjson"
    good = json.dumps(patient("pat1"))
    path.write_text(
        "\n".join(
            [
                good,
                "this is not json",
                '{"resourceType":"Patient","id":"pat2","gend',  # truncated candidate
                "[1, 2]",
                "",
                json.dumps(patient("pat3")),
                '{"resourceType":"Observation","id":"x","status":"fin',  # truncated last line
            ]
        )
    )
    facts = collect_facts([path])
    assert list(facts.patients) == ["pat1", "pat3"]
    assert [(p.resource_type, p.field, p.line) for p in facts.problems] == [
        ("?", "json", 2),
        ("?", "json", 3),
        ("?", "resourceType", 4),
        ("?", "json", 7),
    ]
    assert all(p.file == str(path) for p in facts.problems)
    assert facts.resources_read == 6  # non-blank lines


def test_resource_without_id_is_reported(tmp_path):
    no_id = procedure()
    del no_id["id"]
    facts = collect_facts([write_ndjson(tmp_path / "x.ndjson", [no_id, patient()])])
    assert facts.procedures == [] and [(p.field, p.line) for p in facts.problems] == [("id", 1)]


def test_missing_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        collect_facts([tmp_path / "absent.ndjson"])


def test_two_workers_give_the_same_result_as_one(tmp_path, monkeypatch):
    resources = study_resources()
    big = [vital_sign(f"v{i}", f"pat{i % 3}") for i in range(3000)]
    files = [
        write_ndjson(tmp_path / "a.ndjson", [*big[:1500], *resources, *big[1500:], procedure(meta=meta("2"))]),
        write_ndjson(
            tmp_path / "b.ndjson.gz", [*resources[:3], procedure(meta=meta("2"), performed="2020-05-05")], compress=True
        ),
        write_ndjson(tmp_path / "c.ndjson", resources[3:]),
    ]
    (tmp_path / "c.ndjson").write_text((tmp_path / "c.ndjson").read_text() + "not json\n")
    from fhir_pts.sources import fingerprint

    monkeypatch.setattr(fingerprint, "PIECE_BYTES", 16_384)
    monkeypatch.setattr(collect, "PART_BYTES", 50_000)  # split a.ndjson into several parts
    assert len(collect._tasks(files)) > 4
    one = collect_facts(files, workers=1)
    two = collect_facts(files, workers=2)
    assert one == two  # problems' files and lines included, and the input fingerprints
    # hashed in the reading pass, split or not, as the whole file read alone
    assert one.input_fingerprints == {str(f): fingerprint.fingerprint_file(f) for f in files}
    [proc1] = [p for p in one.procedures if p.resource_id == "proc1"]
    assert proc1.day.month == 5  # the tie went to the copy read last (b.ndjson.gz)
    assert [(p.field, p.file, p.line) for p in one.problems if p.field == "json"] == [
        ("json", str(files[2]), len(resources) - 3 + 1)
    ]
    assert one.resources_read == (len(big) + len(resources) + 1) + (3 + 1) + (len(resources) - 3 + 1)


def test_progress_reports_every_resource(tmp_path):
    path = write_ndjson(tmp_path / "x.ndjson", study_resources())
    seen: list[int] = []
    facts = collect_facts([path], progress=seen.append)
    assert sum(seen) == facts.resources_read == 14


def test_collect_from_raw_resources_keeps_places():
    raws = [RawResource(patency("o", status="registered"), "server:page1", 7), RawResource(patient(), "server", 1)]
    facts = collect_from_resources(raws)
    assert [(p.file, p.line) for p in facts.problems] == [("server:page1", 7)]
    assert list(facts.patients) == ["pat1"] and facts.resources_read == 2


def test_concept_map_codes_are_used_by_the_pre_filter(tmp_path):
    from fhir_pts.adapters.concept_map import ConceptMapTranslator
    from tests.adapters.factories import concept_map

    translator = ConceptMapTranslator.from_resources(
        [concept_map("urn:local", codes.CPT, [("LOCALSTENT", "37238", "equivalent")])]
    )
    local = procedure(code=[("urn:local", "LOCALSTENT")])
    path = write_ndjson(tmp_path / "x.ndjson", [vital_sign("v"), local])
    assert collect_facts([path]).procedures == []
    [fact] = collect_facts([path], translator).procedures
    assert fact.is_stenting
    other = write_ndjson(tmp_path / "y.ndjson", [patient()])
    assert collect_facts([path, other], translator, workers=2).procedures == [fact]  # the map reaches the workers


def test_real_synthea_files_read_without_problem_and_give_only_patients():
    facts = collect_facts([DATA], workers=1)
    assert facts.procedures == [] and facts.findings == [] and facts.assessments == []
    assert facts.adverse_events == [] and facts.problems == []
    # 1 patient in the bundle, 5 in the bulk Patient file
    assert len(facts.patients) == 6
    bundle_entries = len(json.loads((DATA / "synthea-bundle.json").read_text())["entry"])
    assert facts.resources_read == bundle_entries + 40 + 5
    assert all(p.birth_date is not None and p.gender in ("male", "female") for p in facts.patients.values())
    assert collect_facts([DATA], workers=2) == facts


def test_synthea_procedures_with_performed_period_are_read_when_coded_as_ours(tmp_path):
    """Synthea writes performedPeriod; recode one of its procedures as stenting and it becomes a fact."""
    line = (DATA / "synthea-procedures.ndjson").read_text().splitlines()[0]
    resource = json.loads(line)
    assert "performedPeriod" in resource and "performedDateTime" not in resource
    resource["code"] = cc((codes.CPT, "37238"))
    [fact] = collect_from_resources([resource]).procedures
    assert fact.day.isoformat() == resource["performedPeriod"]["start"][:10]


def test_unusable_file_met_by_a_worker_is_an_input_error(tmp_path):
    good = write_ndjson(tmp_path / "a.ndjson", study_resources())
    broken = tmp_path / "b.ndjson.gz"
    broken.write_bytes(gzip.compress(b'{"resourceType":"Patient","id":"1"}\n' * 1000)[:-20])
    with pytest.raises(InputError, match=r"b\.ndjson\.gz"):
        collect_facts([good, broken], workers=2)


def test_workers_that_cannot_start_fall_back_to_one_process(tmp_path, monkeypatch):
    class Broken:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            raise collect.BrokenProcessPool("cannot start")

        def __exit__(self, *exc):
            return False

    files = [
        write_ndjson(tmp_path / "a.ndjson", study_resources()),
        write_ndjson(tmp_path / "b.ndjson", [patient("x")]),
    ]
    expected = collect_facts(files)
    monkeypatch.setattr(collect, "ProcessPoolExecutor", Broken)
    assert collect_facts(files, workers=2) == expected


def test_an_adapter_failure_is_a_problem_for_that_record_only(tmp_path, monkeypatch):
    real = resolve.adapt_resource

    def flaky(resource, vocabulary=None):
        if resource.get("id") == "proc2":
            raise RuntimeError("boom")
        return real(resource, vocabulary)

    monkeypatch.setattr(resolve, "adapt_resource", flaky)
    facts = collect_facts([write_ndjson(tmp_path / "x.ndjson", study_resources())])
    assert [p.resource_id for p in facts.procedures] == ["proc1", "proc3"]
    failed = [(p.resource_id, p.field, p.line) for p in facts.problems if p.field == "resource"]
    assert failed == [("proc2", "resource", 11)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(["ndjson", "ndjson.gz", "json", "jsonl"]), min_size=1, max_size=4),
    st.randoms(use_true_random=False),
)
def test_any_split_into_files_of_any_format_gives_the_same_facts(tmp_path_factory, formats, rnd):
    """Cut the resources, in order, into consecutive files of random formats: the facts do not change."""
    resources = study_resources()
    cuts = sorted(rnd.sample(range(1, len(resources)), len(formats) - 1))
    folder = tmp_path_factory.mktemp("split")
    for index, (start, end, fmt) in enumerate(zip([0, *cuts], [*cuts, len(resources)], formats, strict=True)):
        path = folder / f"part{index:02d}.{fmt}"
        part = resources[start:end]
        if fmt == "json":
            path.write_text(json.dumps(bundle(part)))
        else:
            write_ndjson(path, part, compress=fmt.endswith(".gz"))
    facts = collect_facts([folder])
    assert facts_only(facts) == facts_only(collect_from_resources(resources))
    assert facts.resources_read == len(resources)


def test_collect_from_raw_resources_keeps_the_given_order_across_pages():
    raws = [
        RawResource(procedure("a", performed="2020-01-01"), "page1", 7),
        RawResource(procedure("b", performed="2020-01-02"), "page2", 1),
        RawResource(procedure("a", performed="2020-01-03"), "page2", 2),  # same id, read last: wins
    ]
    raws.append(RawResource(procedure("c", performed="2020-01-04"), "page3", 1))
    facts = collect_from_resources(raws)
    assert [(p.resource_id, p.day.day) for p in facts.procedures] == [("b", 2), ("a", 3), ("c", 4)]


@pytest.mark.parametrize("workers", [1, 2])
def test_non_fhir_json_files_in_a_folder_are_skipped_and_reported(tmp_path, workers):
    write_ndjson(tmp_path / "Patient.ndjson", [patient()])
    (tmp_path / "manifest.json").write_text(json.dumps({"transactionTime": "2024-01-01", "output": []}))
    (tmp_path / "log.ndjson").write_text('{"eventId": "kickoff", "timestamp": "2024"}\n{"eventId": "done"}\n')
    facts = collect_facts([tmp_path], workers=workers)
    assert list(facts.patients) == ["pat1"]
    assert sorted((Path(p.file).name, p.field, p.line) for p in facts.problems) == [
        ("log.ndjson", "resourceType", None),
        ("manifest.json", "resourceType", None),
    ]
    with pytest.raises(InputError, match="not a FHIR resource"):
        collect_facts([tmp_path / "manifest.json"], workers=workers)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_big_non_fhir_file_read_in_parts_is_skipped_whole(tmp_path, monkeypatch, workers):
    """The first part finds the file is not FHIR; the lines of its other parts are not reported one by one."""
    from fhir_pts.sources import fingerprint

    monkeypatch.setattr(fingerprint, "PIECE_BYTES", 4096)
    monkeypatch.setattr(collect, "PART_BYTES", 4096)
    write_ndjson(tmp_path / "Patient.ndjson", [patient()])
    log = tmp_path / "log.ndjson"
    log.write_text("".join(f'{{"eventId": "e{i}", "timestamp": "2024"}}\n' for i in range(2000)))
    assert len([t for t in collect._tasks([log]) if t.path == str(log)]) > 5
    facts = collect_facts([tmp_path], workers=workers)
    assert [(Path(p.file).name, p.field, p.line) for p in facts.problems] == [("log.ndjson", "resourceType", None)]
    assert list(facts.patients) == ["pat1"] and facts.resources_read == 1
    assert facts.input_fingerprints[str(log)] == fingerprint.fingerprint_file(log)


def test_bundle_entries_without_a_resource_type_are_problems_not_silence(tmp_path):
    """A Bundle entry whose resource has no resourceType, or that holds no resource, is a problem row (files and
    resources= alike); a DELETE entry carries no resource and is not one."""
    import json as _json

    from fhir_pts.engines.local import collect_facts, collect_from_resources

    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"id": "p1", "gender": "female", "birthDate": "1970-01-01"}},  # no resourceType
        {"fullUrl": "urn:uuid:x"},  # no resource at all
        {"request": {"method": "DELETE", "url": "Patient/gone"}},
        {"resource": {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1960-01-01"}},
    ]}  # fmt: skip
    path = tmp_path / "b.json"
    path.write_text(_json.dumps(bundle))
    for facts in (collect_facts([path]), collect_from_resources([bundle])):
        assert set(facts.patients) == {"p2"}
        found = sorted((p.field, p.resource_id or "", p.severity) for p in facts.problems)
        assert found in (
            [("entry[1].resource", "", "skipped"), ("resourceType", "p1", "skipped")],  # files: entry index known
            [("resourceType", "", "skipped"), ("resourceType", "p1", "skipped")],  # resources=: the dict only
        )
    (from_file,) = [p for p in collect_facts([path]).problems if p.resource_id == "p1"]
    assert from_file.file == str(path) and from_file.line == 1


def _parted_export(tmp_path, monkeypatch) -> list[Path]:
    from fhir_pts.sources import fingerprint

    monkeypatch.setattr(fingerprint, "PIECE_BYTES", 16_384)
    monkeypatch.setattr(collect, "PART_BYTES", 16_384)
    resources = study_resources()
    big = [vital_sign(f"v{i}", f"pat{i % 3}") for i in range(1500)]
    return [
        write_ndjson(tmp_path / "a.ndjson", [*big[:700], *resources, *big[700:]]),
        write_ndjson(tmp_path / "b.ndjson", [*resources[:3], procedure(meta=meta("2"), performed="2020-05-05")]),
        write_ndjson(tmp_path / "c.ndjson.gz", resources[3:], compress=True),
    ]


@pytest.mark.parametrize("workers", [2, 3])
def test_this_process_reads_from_the_back_and_the_result_is_the_same(tmp_path, monkeypatch, workers):
    """Without work of its own (no ``while_reading``), this process claims tasks from the back while the workers
    take them from the front; some tasks are read here, the facts, problems, counts and fingerprints are those
    of one reader."""
    files = _parted_export(tmp_path, monkeypatch)
    assert len(collect._tasks(files)) > 6
    expected = collect_facts(files, workers=1)
    real = collect._run_task
    read_here: list[str] = []
    here = os.getpid()

    def spy(task, on_lines=None, reader=None):
        if os.getpid() == here:
            read_here.append(task.path)
        else:
            time.sleep(0.05)  # slow workers: this process surely claims tasks as well
        return real(task, on_lines, reader)

    monkeypatch.setattr(collect, "_run_task", spy)
    assert collect_facts(files, workers=workers) == expected
    assert str(files[-1]) in read_here  # the last task (a .gz read whole) was claimed here first
    seen: list[str] = []
    assert collect_facts(files, workers=workers, while_reading=lambda: seen.append("imports")) == expected
    assert seen == ["imports"]


def test_an_error_is_raised_in_task_order_whoever_reads(tmp_path):
    """Two broken inputs: the error names the first in reading order, though this process starts from the last."""
    good = write_ndjson(tmp_path / "a.ndjson", study_resources())
    broken = [tmp_path / "b.ndjson.gz", tmp_path / "c.ndjson.gz"]
    for path in broken:
        path.write_bytes(gzip.compress(b'{"resourceType":"Patient","id":"1"}\n' * 1000)[:-20])
    for _ in range(3):
        with pytest.raises(InputError, match=r"b\.ndjson\.gz"):
            collect_facts([good, *broken], workers=2)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_garbage_collector_is_back_after_reading_even_when_it_fails(tmp_path, workers):
    """Reading pauses the cyclic collector: it is enabled again after a good read and after an input error, and a
    caller's own pause is left as it was."""
    import gc

    good = write_ndjson(tmp_path / "a.ndjson", study_resources())
    broken = tmp_path / "b.ndjson.gz"
    broken.write_bytes(gzip.compress(b'{"resourceType":"Patient","id":"1"}\n' * 1000)[:-20])
    assert gc.isenabled()
    collect_facts([good], workers=workers)
    assert gc.isenabled()
    with pytest.raises(InputError):
        collect_facts([good, broken], workers=workers)
    assert gc.isenabled()
    gc.disable()
    try:
        collect_facts([good], workers=workers)
        assert not gc.isenabled()
    finally:
        gc.enable()
