"""Factories for the pooling tests: synthetic cohorts split into sites by patient, and their shared reports."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from fhir_pts.outputs.aggregates import SharingPolicy
from fhir_pts.outputs.measure_report import build_bundle
from fhir_pts.pipeline import analyse, cohort_from_resources
from fhir_pts.pool import SiteReport, site_from_bundle
from fhir_pts.synth import synthesize


def synthetic_resources(tmp: Path, patients: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """The resources of a synthetic cohort (``patients=None``: the 42-patient paper cohort)."""
    path = tmp / f"cohort-{patients}-{seed}.json"
    synthesize(path, patients=patients, seed=seed, fmt="bundle")
    return [e["resource"] for e in json.loads(path.read_bytes())["entry"]]


def patient_of(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource["id"])
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return ref.rsplit("/", 1)[-1] or None


def split_by_patient(
    resources: Sequence[dict[str, Any]], k: int, seed: int = 0, empty: Sequence[int] = ()
) -> list[list[dict[str, Any]]]:
    """``resources`` split into ``k`` sites, every patient with all their resources at one site; the sites in
    ``empty`` get no patient at all."""
    rng = random.Random(seed)
    patients = sorted({p for r in resources if (p := patient_of(r)) is not None})
    choices = [i for i in range(k) if i not in empty]
    site_of = {p: rng.choice(choices) for p in patients}
    sites: list[list[dict[str, Any]]] = [[] for _ in range(k)]
    for r in resources:
        p = patient_of(r)
        if p is not None:
            sites[site_of[p]].append(r)
    return sites


def shared_bundle(resources: Sequence[dict[str, Any]], policy: SharingPolicy, parameters: Any = None) -> dict[str, Any]:
    """The ``measure-reports.json`` a site shares (through JSON bytes, as a file would carry it)."""
    cohort = cohort_from_resources(list(resources))
    outcomes = analyse(cohort, parameters=parameters)
    return json.loads(orjson.dumps(build_bundle(outcomes, cohort, sharing=policy)))


def shared_sites(parts: Sequence[Sequence[dict[str, Any]]], policy: SharingPolicy) -> list[SiteReport]:
    return [site_from_bundle(shared_bundle(p, policy), f"site{i + 1}") for i, p in enumerate(parts)]


def write_bundle(path: Path, resources: Sequence[dict[str, Any]]) -> Path:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    path.write_bytes(orjson.dumps(bundle))
    return path
