"""synthesize(): output kind from the path, formats, summary, byte-identical reruns."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_pts.synth import synthesize


def test_paper_cohort_default_bundle_validates(tmp_path: Path) -> None:
    summary = synthesize(tmp_path / "paper.json")
    assert summary.files == [tmp_path / "paper.json"] and summary.patients == 42
    bundle = json.loads((tmp_path / "paper.json").read_text())
    assert len(bundle["entry"]) == summary.resources
    Bundle.model_validate(bundle)


def test_paper_cohort_to_a_folder_is_ndjson(tmp_path: Path) -> None:
    summary = synthesize(tmp_path / "paper")
    names = sorted(p.name for p in (tmp_path / "paper").iterdir())
    assert names == ["AdverseEvent.ndjson", "Observation.ndjson", "Patient.ndjson", "Procedure.ndjson",
                     "QuestionnaireResponse.ndjson"]  # fmt: skip
    for kind, count in summary.counts.items():
        assert len((tmp_path / "paper" / f"{kind}.ndjson").read_text().splitlines()) == count


def test_random_cohort_same_seed_identical_bytes(tmp_path: Path) -> None:
    synthesize(tmp_path / "a", patients=40, seed=9, fmt="ndjson.gz")
    synthesize(tmp_path / "b", patients=40, seed=9, fmt="ndjson.gz")
    synthesize(tmp_path / "c", patients=40, seed=10, fmt="ndjson.gz")
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    a = gzip.decompress((tmp_path / "a" / "Patient.ndjson.gz").read_bytes())
    assert a != gzip.decompress((tmp_path / "c" / "Patient.ndjson.gz").read_bytes())
    assert len(a.splitlines()) == 40


def test_random_cohort_as_bundle(tmp_path: Path) -> None:
    summary = synthesize(tmp_path / "r.json", patients=5, seed=1)
    assert json.loads((tmp_path / "r.json").read_text())["id"] == "fhir-pts-random-5-seed-1"
    assert summary.patients == 5


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        synthesize(tmp_path / "x", fmt="csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="patients must be"):
        synthesize(tmp_path / "x", patients=-1)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_identical_bytes_across_processes(tmp_path: Path) -> None:
    """Nothing depends on the interpreter's hash seed (str hashing) or on time."""
    import os
    import subprocess
    import sys

    code = "import sys; from pathlib import Path; from fhir_pts.synth import synthesize; " \
           "synthesize(Path(sys.argv[1]), patients=25, seed=4, fmt='ndjson.gz')"  # fmt: skip
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / hash_seed)], check=True, env=env)
    for path in sorted((tmp_path / "1").iterdir()):
        assert path.read_bytes() == (tmp_path / "2" / path.name).read_bytes()
