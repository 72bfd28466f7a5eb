"""The resource count estimated before reading (the progress bar's total and ETA)."""

from __future__ import annotations

import gzip
from pathlib import Path

from fhir_pts.sources import estimate
from fhir_pts.sources.estimate import estimate_resources
from fhir_pts.sources.files import expand_inputs
from fhir_pts.synth import synthesize


def test_close_to_the_real_count_for_ndjson_gzip_and_bundles(tmp_path: Path) -> None:
    synthesize(tmp_path / "nd", patients=150, seed=1, fmt="ndjson")
    synthesize(tmp_path / "gz", patients=150, seed=1, fmt="ndjson.gz")
    synthesize(tmp_path / "paper.json", patients=None, fmt="bundle")
    lines = sum(len(p.read_bytes().splitlines()) for p in expand_inputs([tmp_path / "nd"]))
    for folder in ("nd", "gz"):
        guess = estimate_resources(expand_inputs([tmp_path / folder]))
        assert guess is not None and abs(guess - lines) / lines < 0.05, (folder, guess, lines)
    bundle = estimate_resources([tmp_path / "paper.json"])
    assert bundle is not None and 500 < bundle < 650  # 576 resources
    assert gzip.decompress((tmp_path / "gz" / "Patient.ndjson.gz").read_bytes())


def test_many_files_are_sampled_not_all_read(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    files = []
    for i in range(100):
        path = tmp_path / f"p{i}.ndjson"
        path.write_text('{"resourceType":"Patient"}\n' * 10)
        files.append(path)
    read = []
    real = estimate._sample
    monkeypatch.setattr(estimate, "_sample", lambda p: read.append(p) or real(p))
    assert estimate_resources(files) == 1000
    assert len(read) <= estimate.MAX_SAMPLED
    assert estimate_resources([]) is None
