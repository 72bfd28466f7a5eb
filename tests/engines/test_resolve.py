"""Conflicting duplicates (issue #18 item 6): every disagreeing copy is reported, a subject change loudly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fhir_pts.engines.local import collect_facts, collect_from_resources
from tests.adapters.factories import meta, patient, procedure


def duplicate_warnings(facts) -> list:
    return [p for p in facts.problems if p.field == "id" and p.severity == "warning"]


def test_identical_copies_are_not_reported() -> None:
    facts = collect_from_resources([patient(), procedure(), procedure()])
    assert duplicate_warnings(facts) == []


def test_a_newer_version_that_changes_a_fact_is_reported() -> None:
    old = procedure(meta=meta("1"), performed="2020-01-15")
    new = procedure(meta=meta("2"), performed="2020-02-15")
    facts = collect_from_resources([patient(), new, old])  # the older copy read last still loses
    assert [p.day.isoformat() for p in facts.procedures] == ["2020-02-15"]
    (warning,) = duplicate_warnings(facts)
    assert warning.resource_type == "Procedure" and warning.resource_id == "proc1"
    assert "conflicting duplicate" in warning.reason and "day" in warning.reason
    assert "versionId 2 is used" in warning.reason and "versionId 1" in warning.reason


def test_every_losing_copy_is_reported() -> None:
    copies = [procedure(meta=meta(str(v)), performed=f"2020-01-{10 + v}") for v in (1, 2, 3)]
    facts = collect_from_resources([patient(), *copies])
    assert len(duplicate_warnings(facts)) == 2
    assert [p.day.day for p in facts.procedures] == [13]


def test_a_subject_change_is_reported_loudly(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "Procedure.ndjson"
    lines = [procedure(meta=meta("1"), patient_id="pat1"), procedure(meta=meta("2"), patient_id="pat2")]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    logger = logging.getLogger("fhir_pts.engines.resolve")  # the CLI's logging setup stops propagation
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="fhir_pts.engines.resolve"):
            facts = collect_facts([path])
    finally:
        logger.removeHandler(caplog.handler)
    (warning,) = duplicate_warnings(facts)
    assert warning.reason.startswith("SUBJECT CHANGED")
    assert warning.patient_id == "pat2" and warning.line == 2
    assert f"{path}:1" in warning.reason
    assert "different patients" in caplog.text and "pat1" not in caplog.text  # no patient id in the log
