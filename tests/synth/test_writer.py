"""Streaming writers: NDJSON per resource type (plain and gzip), the transaction Bundle, atomicity."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_pts.synth.writer import write_bundle, write_ndjson


def make_resources(n_patients: int) -> list[dict[str, Any]]:
    """Small hand-made resources: per patient one Patient and two Observations."""
    out: list[dict[str, Any]] = []
    for i in range(n_patients):
        out.append({"resourceType": "Patient", "id": f"p{i}", "gender": "female"})
        for k in range(2):
            out.append({"resourceType": "Observation", "id": f"o{i}-{k}", "status": "final",
                        "code": {"text": "x"}, "subject": {"reference": f"Patient/p{i}"}})  # fmt: skip
    return out


def test_ndjson_one_file_per_type_one_resource_per_line(tmp_path: Path) -> None:
    summary = write_ndjson(make_resources(3), tmp_path)
    assert summary.counts == {"Observation": 6, "Patient": 3}
    assert summary.files == [tmp_path / "Observation.ndjson", tmp_path / "Patient.ndjson"]
    lines = (tmp_path / "Observation.ndjson").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["o0-0", "o0-1", "o1-0", "o1-1", "o2-0", "o2-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Observation.ndjson", "Patient.ndjson"]  # no temp files


def test_ndjson_gz_round_trips_and_is_byte_stable(tmp_path: Path) -> None:
    write_ndjson(make_resources(2), tmp_path / "a", compress=True)
    write_ndjson(make_resources(2), tmp_path / "b", compress=True)
    a = (tmp_path / "a" / "Patient.ndjson.gz").read_bytes()
    assert a == (tmp_path / "b" / "Patient.ndjson.gz").read_bytes()
    assert [json.loads(x)["id"] for x in gzip.decompress(a).splitlines()] == ["p0", "p1"]


def test_ndjson_writes_nothing_when_the_stream_fails(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_text("old\n")

    def failing() -> Iterator[dict[str, Any]]:
        yield from make_resources(1)
        raise RuntimeError("generator broke")

    with pytest.raises(RuntimeError):
        write_ndjson(failing(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Patient.ndjson"]
    assert (tmp_path / "Patient.ndjson").read_text() == "old\n"  # the previous output is untouched


def test_bundle_is_a_transaction_with_put_requests(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cohort.json"
    summary = write_bundle(make_resources(2), path, bundle_id="b1")
    bundle = json.loads(path.read_text())
    assert (bundle["resourceType"], bundle["id"], bundle["type"]) == ("Bundle", "b1", "transaction")
    assert len(bundle["entry"]) == 6 and summary.resources == 6 and summary.patients == 2
    assert bundle["entry"][1]["request"] == {"method": "PUT", "url": "Observation/o0-0"}
    assert bundle["entry"][0]["resource"]["id"] == "p0"


def test_empty_bundle_is_valid_json(tmp_path: Path) -> None:
    write_bundle([], tmp_path / "empty.json")
    assert json.loads((tmp_path / "empty.json").read_text())["entry"] == []


def test_bundle_failure_leaves_no_file(tmp_path: Path) -> None:
    def failing() -> Iterator[dict[str, Any]]:
        yield make_resources(1)[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_bundle(failing(), tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


def test_summary_reads_well(tmp_path: Path) -> None:
    summary = write_ndjson(make_resources(2), tmp_path)
    assert str(summary) == f"wrote 6 resources (Observation 4, Patient 2) to 2 files in {tmp_path}"
