"""Fixtures of the serve tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random synthetic cohort (fhir-pts synth, 50 patients, seed 8) as one Bundle file, per test module."""
    from fhir_pts.synth import synthesize

    path = tmp_path_factory.mktemp("synth") / "cohort.json"
    synthesize(path, patients=50, seed=8, fmt="bundle")
    return path
