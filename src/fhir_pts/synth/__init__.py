"""Synthetic cohorts in the contract's FHIR R4 encodings (``fhir-pts synth``).

Two cohorts (see ``docs/synthetic-cohort.md``):

- the **paper cohort** (:func:`paper_cohort_resources`): 42 fixed, constructed patients whose analysis gives
  back the seed abstract's figures;
- a **random cohort** (:func:`random_cohort_resources`): ``n`` realistic patients, reproducible for a seed,
  with the encodings' variety, records the contract says to skip, and unrelated noise resources.

:func:`synthesize` writes either one to disk (a Bundle JSON file or a folder of NDJSON per resource type),
optionally with site-local codes and the ConceptMap that maps them (:mod:`fhir_pts.synth.site_codes`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fhir_pts.instruments.model import Instrument
from fhir_pts.synth.paper import paper_cohort_resources
from fhir_pts.synth.random_cohort import DEFAULT_NOISE_PER_PATIENT, random_cohort_resources
from fhir_pts.synth.site_codes import SiteCoder
from fhir_pts.synth.writer import Format, SynthSummary, write_bundle, write_json, write_ndjson


def synthesize(
    out: Path,
    *,
    patients: int | None = None,
    seed: int = 0,
    fmt: Format | None = None,
    noise_per_patient: float = DEFAULT_NOISE_PER_PATIENT,
    site_codes: Path | None = None,
    instruments: Sequence[Instrument] = (),
) -> SynthSummary:
    """Write a synthetic cohort to ``out`` and return what was written.

    Parameters
    ----------
    out:
        A file (Bundle) or a folder (NDJSON per resource type: ``Patient.ndjson``, ``Procedure.ndjson``, ...).
    patients:
        ``None`` (default): the 42-patient paper cohort (``seed`` and ``noise_per_patient`` are ignored).
        ``N``: a random cohort of ``N`` patients drawn with ``seed``.
    fmt:
        ``"bundle"``, ``"ndjson"`` or ``"ndjson.gz"``; ``None`` picks ``"bundle"`` when ``out`` ends in
        ``.json``, else ``"ndjson"``.
    noise_per_patient:
        Random cohort only: mean number of unrelated resources (vital signs, labs, encounters, ...) per patient.
    site_codes:
        When given, about half of the coded resources carry site-local codes instead of the contract's, and the
        ConceptMap mapping them back (read it with ``fhir-pts run --concept-map``) is written to this file. With
        it, the cohort gives the same numbers as without ``site_codes``.
    instruments:
        Random cohort only: further instruments (the plugins') whose Questionnaires are answered too.

    Returns
    -------
    SynthSummary
        Resource counts per resource type and the files written. Files are written atomically.
    """
    out = Path(out)
    if patients is not None and patients < 0:
        raise ValueError(f"patients must be >= 0, got {patients}")
    if fmt is None:
        fmt = "bundle" if out.suffix.lower() == ".json" else "ndjson"
    resources: Iterator[dict[str, Any]] = (
        paper_cohort_resources()
        if patients is None
        else random_cohort_resources(patients, seed, noise_per_patient=noise_per_patient, instruments=instruments)
    )
    if fmt not in ("bundle", "ndjson", "ndjson.gz"):
        raise ValueError(f"unknown format {fmt!r}: expected 'bundle', 'ndjson' or 'ndjson.gz'")
    coder = SiteCoder() if site_codes is not None else None
    if coder is not None:
        resources = coder.recode_all(resources)
    if fmt == "bundle":
        bundle_id = "fhir-pts-paper-cohort" if patients is None else f"fhir-pts-random-{patients}-seed-{seed}"
        summary = write_bundle(resources, out, bundle_id=bundle_id)
    else:
        summary = write_ndjson(resources, out, compress=fmt == "ndjson.gz")
    if coder is not None and site_codes is not None:
        summary.files.append(write_json(coder.concept_map(), Path(site_codes)))
    return summary


__all__ = ["SynthSummary", "paper_cohort_resources", "random_cohort_resources", "synthesize"]
