"""The raw directory writer: atomic, de-duplicated NDJSON per type (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_pts.sources.server.http import ServerError
from fhir_pts.sources.server.rawdir import NdjsonWriter
from fhir_pts.sources.server.search import patient_of, token_list


def test_writer_dedups_and_is_atomic(tmp_path: Path) -> None:
    w = NdjsonWriter(tmp_path)
    assert w.add({"resourceType": "Patient", "id": "a", "meta": {"versionId": "1"}})
    assert not w.add({"resourceType": "Patient", "id": "a", "meta": {"versionId": "1"}})
    assert w.add({"resourceType": "Patient", "id": "a", "meta": {"versionId": "2"}})  # kept: pipeline picks v2
    assert not list(tmp_path.glob("*.ndjson"))  # nothing under the final name before close()
    paths = w.close(ensure_types=["Patient", "AdverseEvent"])
    assert [p.name for p in paths] == ["AdverseEvent.ndjson", "Patient.ndjson"]
    assert paths[0].read_text() == ""
    assert [json.loads(x)["meta"]["versionId"] for x in paths[1].read_text().splitlines()] == ["1", "2"]
    assert w.duplicates == 1 and not list(tmp_path.glob(".*.tmp"))


def test_writer_refuses_resources_without_type_or_id(tmp_path: Path) -> None:
    w = NdjsonWriter(tmp_path)
    with pytest.raises(ServerError, match="without a valid resourceType/id"):
        w.add({"resourceType": "../etc", "id": "x"})
    w.abort()
    assert not list(tmp_path.iterdir())


def test_token_list_escapes_and_patient_of() -> None:
    assert token_list([("http://s", "a,b"), ("http://r", "c|d")]) == "http://r|c\\|d,http://s|a\\,b"
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "http://x/fhir/Patient/7"}}) == "7"
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "Group/7"}}) is None
    assert patient_of({"resourceType": "AdverseEvent", "subject": {"reference": "Patient/3/_history/2"}}) == "3"
