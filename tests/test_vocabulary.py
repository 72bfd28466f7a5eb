"""The run's vocabulary: contract codes plus ConceptMap-mapped local codes, forwards and backwards."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest

from fhir_pts import codes
from fhir_pts.errors import InputError
from fhir_pts.vocabulary import MapSource, Vocabulary, is_canonical

LOCAL = "urn:oid:1.2.3.4.5"


def concept_map(url: str | None = "https://hospital.example/fhir/ConceptMap/pts", version: str | None = "2") -> dict:
    cm: dict = {
        "resourceType": "ConceptMap", "id": "pts", "status": "active",
        "group": [
            {"source": LOCAL, "target": codes.PTS_SYSTEM, "element": [
                {"code": "STENT-V", "target": [{"code": "venous-stenting", "equivalence": "equivalent"}]},
                {"code": "PAT", "target": [{"code": "stent-patency", "equivalence": "wider"}]},
                {"code": "NOPE", "target": [{"code": "villalta-total", "equivalence": "disjoint"}]},
            ]},
            {"source": LOCAL, "target": codes.ICD10PCS, "element": [
                {"code": "ANGIO", "target": [{"code": "067C3ZZ", "equivalence": "equivalent"}]},
            ]},
        ],
    }  # fmt: skip
    if url:
        cm["url"] = url
    if version:
        cm["version"] = version
    return cm


def write(tmp_path: Path, resource: dict, name: str = "cm.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(resource))
    return path


def test_forwards_local_codes_expand_to_contract_codes(tmp_path: Path) -> None:
    vocabulary = Vocabulary.from_files([write(tmp_path, concept_map())])
    concept = {"coding": [{"system": LOCAL, "code": "STENT-V"}]}
    assert vocabulary.expanded(concept) == [(LOCAL, "STENT-V"), (codes.PTS_SYSTEM, "venous-stenting")]
    assert vocabulary.matches(concept, codes.VENOUS_STENTING)
    assert not vocabulary.matches({"coding": [{"system": LOCAL, "code": "NOPE"}]}, codes.OBSERVATION_CODES)
    assert not Vocabulary().matches(concept, codes.VENOUS_STENTING)


def test_backwards_every_code_that_maps_to_a_contract_concept(tmp_path: Path) -> None:
    vocabulary = Vocabulary.from_files([write(tmp_path, concept_map())])
    assert vocabulary.index_procedure_codings == codes.VENOUS_STENTING | {(LOCAL, "STENT-V")}
    assert vocabulary.observation_codings == codes.OBSERVATION_CODES | {(LOCAL, "PAT")}  # disjoint does not map
    assert Vocabulary().index_procedure_codings == codes.VENOUS_STENTING
    assert vocabulary.local_codings_where(lambda c: c[0] == codes.ICD10PCS) == {(LOCAL, "ANGIO")}
    assert vocabulary.source_codes == {"STENT-V", "PAT", "ANGIO"}


def test_provenance_names_file_digest_and_canonical(tmp_path: Path) -> None:
    path = write(tmp_path, concept_map())
    vocabulary = Vocabulary.build([path])
    (source,) = vocabulary.sources
    assert source == MapSource("file", str(path), "https://hospital.example/fhir/ConceptMap/pts", "2",
                               hashlib.sha256(path.read_bytes()).hexdigest())  # fmt: skip
    assert vocabulary.provenance() == [
        f"https://hospital.example/fhir/ConceptMap/pts|2 — file {path} (sha256 {source.sha256})"
    ]


def test_canonical_needs_a_server_and_reader_is_used_in_order(tmp_path: Path) -> None:
    canonical = "https://hospital.example/fhir/ConceptMap/pts|2"
    assert is_canonical(canonical) and not is_canonical(tmp_path / "cm.json")
    with pytest.raises(InputError, match="--server"):
        Vocabulary.build([canonical])
    seen: list[str] = []

    def read(reference: str) -> tuple[dict, MapSource]:
        seen.append(reference)
        return concept_map(), MapSource("server", "http://127.0.0.1/fhir/ConceptMap/pts", *reference.split("|"))

    other = {"resourceType": "ConceptMap", "group": [{"source": "urn:x", "target": codes.PTS_SYSTEM, "element": [
        {"code": "V", "target": [{"code": "villalta-total", "equivalence": "equivalent"}]}]}]}  # fmt: skip
    vocabulary = Vocabulary.build([write(tmp_path, other, "other.json"), canonical], read)
    assert seen == [canonical]
    assert [s.kind for s in vocabulary.sources] == ["file", "server"]
    assert vocabulary.observation_codings >= {("urn:x", "V"), (LOCAL, "PAT")}


def test_picklable_for_worker_processes(tmp_path: Path) -> None:
    vocabulary = Vocabulary.from_files([write(tmp_path, concept_map())])
    again = pickle.loads(pickle.dumps(vocabulary))
    assert again.index_procedure_codings == vocabulary.index_procedure_codings
    assert again.sources == vocabulary.sources


def test_unusable_concept_map_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="group"):
        Vocabulary.from_files([write(tmp_path, {"resourceType": "ConceptMap"})])
    with pytest.raises(InputError, match="cannot be read"):
        Vocabulary.from_files([tmp_path / "missing.json"])
