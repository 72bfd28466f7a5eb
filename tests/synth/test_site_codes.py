"""``synth --site-codes``: site-local codes replace contract codes, and the ConceptMap written maps them back."""

from __future__ import annotations

import json
from pathlib import Path

from fhir_pts import codes
from fhir_pts.cli import main
from fhir_pts.synth import random_cohort_resources
from fhir_pts.synth.site_codes import SITE_SYSTEM, SiteCoder
from fhir_pts.vocabulary import Vocabulary, codings


def test_recoded_codings_map_back_to_what_they_replaced() -> None:
    coder = SiteCoder()
    original = list(random_cohort_resources(40, 2, noise_per_patient=5))
    recoded = [coder.recode(r) for r in original]
    vocabulary = Vocabulary.from_resources([(coder.concept_map(), _source())])
    changed = 0
    for before, after in zip(original, recoded, strict=True):
        for element in ("code", "bodySite", "outcome", "complication", "reasonCode", "valueCodeableConcept",
                        "method", "seriousness"):  # fmt: skip
            old, new = list(codings(before.get(element))), list(codings(after.get(element)))
            if old == new:
                continue
            changed += 1
            assert all(system == SITE_SYSTEM for system, _ in new)
            mapped = {c for local in new for c in vocabulary.expand(local)} - set(new)
            disjoint = any(code in coder.disjoint for _, code in new)
            assert mapped == set(old) or disjoint  # a disjoint local code maps to nothing
    assert changed > 50
    assert coder.disjoint, "no unrelated procedure got a disjoint local code"
    # disjoint means "not this": the search door must never ask for those local codes
    assert not {(SITE_SYSTEM, code) for code in coder.disjoint} & vocabulary.index_procedure_codings
    assert (SITE_SYSTEM, "CPT-37238") in vocabulary.index_procedure_codings
    assert vocabulary.index_procedure_codings > codes.VENOUS_STENTING


def _source():  # type: ignore[no-untyped-def]
    from fhir_pts.vocabulary import MapSource

    return MapSource("file", "memory")


def test_cli_site_codes_same_numbers_with_the_concept_map(tmp_path: Path) -> None:
    assert main(["synth", "--patients", "80", "--seed", "4", "--out", str(tmp_path / "plain"), "-q"]) == 0
    cm = tmp_path / "cm.json"
    assert main(["synth", "--patients", "80", "--seed", "4", "--out", str(tmp_path / "site"), "--site-codes",
                 str(cm), "-q"]) == 0  # fmt: skip
    assert json.loads(cm.read_text())["resourceType"] == "ConceptMap"
    runs = {
        "plain": ["run", str(tmp_path / "plain")],
        "mapped": ["run", str(tmp_path / "site"), "--concept-map", str(cm)],
        "unmapped": ["run", str(tmp_path / "site")],
    }
    for name, argv in runs.items():
        assert main([*argv, "--out", str(tmp_path / f"out-{name}"), "--no-report", "-q"]) == 0
    read = {name: (tmp_path / f"out-{name}" / "results.csv").read_text() for name in runs}
    assert read["mapped"] == read["plain"]
    assert read["unmapped"] != read["plain"]
    assert (tmp_path / "out-mapped" / "cohort.csv").read_text() == (tmp_path / "out-plain" / "cohort.csv").read_text()
