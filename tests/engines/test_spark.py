"""The Spark engine (real Spark, local[2]) gives what the local engine gives: cohort.csv, results.csv, problems.csv.

Inputs: a random cohort plus site-coded procedures (through a ConceptMap), duplicate versions across files,
malformed and truncated NDJSON lines, a non-FHIR file in a folder — as one Bundle, NDJSON, gzip, and mixed.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_pts import codes
from fhir_pts.cli import main
from fhir_pts.cohort.model import Cohort
from fhir_pts.engines.local import LocalEngine
from fhir_pts.engines.spark import SparkEngine, plan_inputs
from fhir_pts.outputs.tables import cohort_csv_bytes, problems_csv_bytes, results_csv_bytes
from fhir_pts.pipeline import analyse
from fhir_pts.sources.files import InputError
from fhir_pts.synth import random_cohort_resources
from fhir_pts.vocabulary import ConceptMapTranslator
from tests.adapters.factories import concept_map, meta, patient, procedure

pytestmark = pytest.mark.spark

SITE = "http://hospital.example/fhir/CodeSystem/procedures"


def _cohort_resources() -> list[dict[str, Any]]:
    return list(random_cohort_resources(30, seed=16))


def _extras() -> list[dict[str, Any]]:
    """Site-coded stenting, and a patient whose copies must resolve by version (contract §1)."""
    return [
        patient("site-p1", gender="male", birth_date="1960-01-02"),
        procedure("site-s1", "site-p1", code=[(SITE, "ILIAC-STENT")], performed="2021-02-03T10:00:00+01:00"),
        patient("dup-p1", gender="female", meta=meta("3")),
        procedure("dup-s1", "dup-p1", code=[(codes.CPT, "37238")], performed="2021-05-06T10:00:00+01:00"),
    ]


def _later_copies() -> list[dict[str, Any]]:
    """Read after _extras: an older Patient version (loses) and an equal-version Procedure copy (wins, read last)."""
    return [
        patient("dup-p1", gender="male", meta=meta("2")),
        procedure("dup-s1", "dup-p1", code=[(codes.CPT, "37238")], performed="2021-05-07T10:00:00+01:00"),
    ]


def _lines(resources: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in resources)


def _bundle(resources: list[dict[str, Any]]) -> bytes:
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def _ndjson_folder(folder: Path, resources: list[dict[str, Any]], compress: bool = False) -> Path:
    folder.mkdir(parents=True)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    for resource_type, items in by_type.items():
        data = _lines(items)
        name = f"{resource_type}.ndjson" + (".gz" if compress else "")
        (folder / name).write_bytes(gzip.compress(data) if compress else data)
    return folder


def _broken_lines(path: Path) -> Path:
    """NDJSON with a malformed line in the middle and a truncated last line."""
    good = _lines(_later_copies()).splitlines()
    path.write_bytes(good[0] + b"\n" + b'{not json' + b"\n" + good[1] + b"\n"
                     + b'{"resourceType":"Observation","id":"cut","status":"fin')  # fmt: skip
    return path


def layout(kind: str, root: Path) -> list[str]:
    """The same data written as ``kind``; returns the INPUT arguments."""
    cohort, extras = _cohort_resources(), _extras()
    if kind == "bundle":
        path = root / "all.json"
        path.write_bytes(_bundle(cohort + extras + _later_copies()))
        return [str(path)]
    if kind in ("ndjson", "gzip"):
        folder = _ndjson_folder(root / "export", cohort + extras, compress=kind == "gzip")
        (folder / "manifest.json").write_text('{"transactionTime": "2024-01-01", "output": []}')
        return [str(folder), str(_broken_lines(root / "late.ndjson"))]
    assert kind == "mixed"
    half = len(cohort) // 2
    bundle = root / "first.json.gz"
    bundle.write_bytes(gzip.compress(_bundle(cohort[:half] + extras)))
    folder = _ndjson_folder(root / "rest", cohort[half:], compress=False)
    return [str(bundle), str(folder), str(_broken_lines(root / "late.ndjson"))]


def concepts() -> ConceptMapTranslator:
    return ConceptMapTranslator.from_resources([concept_map(SITE, codes.CPT, [("ILIAC-STENT", "37238", "equivalent")])])


def outputs(cohort: Cohort) -> dict[str, Any]:
    return {
        "cohort.csv": cohort_csv_bytes(cohort).decode(),
        "results.csv": results_csv_bytes(analyse(cohort)).decode(),
        "problems.csv": problems_csv_bytes(cohort.problems).decode(),
        "flow": cohort.flow,
        "period": (cohort.period_start, cohort.period_end),
    }


@pytest.mark.parametrize("kind", ["bundle", "ndjson", "gzip", "mixed"])
def test_spark_gives_the_local_engines_outputs(kind, tmp_path, spark_session):
    inputs = layout(kind, tmp_path)
    local = LocalEngine().load_cohort(inputs, concepts())
    spark = SparkEngine(session=spark_session).load_cohort(inputs, concepts())
    expected = outputs(local)
    assert outputs(spark) == expected
    # every local input fingerprinted while Spark read (the report reads no input again), as the local engine does
    assert spark.input_fingerprints == local.input_fingerprints and len(local.input_fingerprints) >= len(inputs)
    # the data exercise what they should: site codes mapped, duplicates resolved, bad lines reported
    rows = local.patients.set_index("patient_id")
    assert "site-p1" in rows.index
    assert rows.loc["dup-p1", "sex"] == "female" and rows.loc["dup-p1", "index_date"] == "2021-05-07"
    if kind != "bundle":
        assert ",json," in expected["problems.csv"] and "late.ndjson,2," in expected["problems.csv"]
        assert "late.ndjson,4," in expected["problems.csv"]  # the truncated last line
    if kind in ("ndjson", "gzip"):
        assert "manifest.json" in expected["problems.csv"]
    assert len(local) > 10


def test_uri_inputs_are_listed_by_spark_in_path_order(tmp_path, spark_session):
    inputs = layout("ndjson", tmp_path)
    uris = [Path(i).resolve().as_uri() for i in inputs]
    assert plan_inputs(uris).remote and not plan_inputs(uris).files
    local = outputs(LocalEngine().load_cohort([str(Path(i).resolve()) for i in inputs], concepts()))
    spark = outputs(SparkEngine(session=spark_session).load_cohort(uris, concepts()))
    assert spark["cohort.csv"] == local["cohort.csv"] and spark["results.csv"] == local["results.csv"]
    # a non-FHIR JSON file in a URI folder is still one problem; file names are the decoded paths
    assert spark["problems.csv"] == local["problems.csv"]


def test_line_numbers_stay_right_when_spark_splits_a_file(tmp_path, spark_session):
    """A plain NDJSON file read in many splits: problems carry the file's line numbers, not the split's."""
    noise = [{"resourceType": "Observation", "id": f"hr{i}", "status": "final", "code": {"text": "heart rate"}}
             for i in range(3000)]  # fmt: skip
    lines = [*_lines(noise[:1500]).splitlines(), b"{not json", *_lines(noise[1500:] + _extras()).splitlines()]
    path = tmp_path / "big.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    spark_session.conf.set("spark.sql.files.maxPartitionBytes", "16384")
    try:
        spark = SparkEngine(session=spark_session).load_cohort([str(path)], concepts())
    finally:
        spark_session.conf.unset("spark.sql.files.maxPartitionBytes")
    local = LocalEngine().load_cohort([str(path)], concepts())
    [malformed] = [p for p in spark.problems if p.field == "json"]
    assert malformed.line == 1501
    assert outputs(spark) == outputs(local)
    assert spark.flow["resources_read"] == 3005  # every non-blank line, the malformed one too


def test_unusable_inputs_are_input_errors_as_in_the_local_engine(tmp_path, spark_session):
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"transactionTime": "2024-01-01"}')
    for inputs in ([str(manifest)], [str(tmp_path / "absent.ndjson")]):
        with pytest.raises(InputError) as local_error:
            LocalEngine().load_cohort(inputs)
        with pytest.raises(InputError) as spark_error:
            SparkEngine(session=spark_session).load_cohort(inputs)
        assert str(spark_error.value) == str(local_error.value)
    with pytest.raises(InputError, match="no such file or folder"):
        SparkEngine(session=spark_session).load_cohort([(tmp_path / "absent").as_uri()])


def test_cli_run_with_engine_spark_writes_what_the_local_engine_writes(tmp_path, spark_session, capsys):
    inputs = layout("mixed", tmp_path)
    cm = tmp_path / "cm.json"
    cm.write_text(json.dumps(concept_map(SITE, codes.CPT, [("ILIAC-STENT", "37238", "equivalent")])))
    common = [*inputs, "--concept-map", str(cm), "--no-report", "--quiet"]
    assert main(["run", *common, "--out", str(tmp_path / "local")]) == 0
    assert main(["run", *common, "--engine", "spark", "--out", str(tmp_path / "spark")]) == 0
    for name in ("cohort.csv", "results.csv", "problems.csv", "measure-reports.json"):
        local, spark = (tmp_path / "local" / name).read_bytes(), (tmp_path / "spark" / name).read_bytes()
        if name == "measure-reports.json":  # generated timestamps and ids differ run to run
            local, spark = (json.loads(x)["entry"][0]["resource"]["group"] for x in (local, spark))
        assert spark == local, name


def test_host_api_takes_the_engine(tmp_path, spark_session):
    from fhir_pts.host import FhirPtsHost

    inputs = layout("bundle", tmp_path)
    local = FhirPtsHost().run(files=inputs)
    spark = FhirPtsHost(engine="spark").run(files=inputs)
    assert spark.results.equals(local.results)
    assert spark.patients.equals(local.patients)


def test_missing_java_or_pyspark_says_how_to_install_exit_2(tmp_path, monkeypatch, capsys):
    inputs = layout("bundle", tmp_path)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-java-here"))
    assert main(["run", *inputs, "--engine", "spark", "--out", str(tmp_path / "o")]) == 2
    assert "Java runtime" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # pyspark not installed: its import fails
    assert main(["run", *inputs, "--engine", "spark", "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'fhir-pts[spark]'" in capsys.readouterr().err
    assert main(["run", *inputs, "--spark-master", "local[1]", "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
