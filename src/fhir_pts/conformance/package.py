"""The FHIR package compiled from ``profiles/`` and shipped under ``fhir_pts/data/profiles/``: every resource
by canonical URL, one Measure or Questionnaire by id."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from fhir_pts.codes import CANONICAL_BASE

Json = dict[str, Any]


# --- the package ----------------------------------------------------------------------------------------------


def _package_files() -> Iterator[tuple[str, bytes]]:
    root = resources.files("fhir_pts").joinpath("data", "profiles")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield entry.name, entry.read_bytes()


@cache
def _package() -> tuple[dict[str, Json], Json]:
    by_url: dict[str, Json] = {}
    manifest: Json = {}
    for name, data in _package_files():
        resource = json.loads(data)
        if name == "package.json":
            manifest = resource
        elif "url" in resource:
            by_url[resource["url"]] = resource
    return by_url, manifest


def load_package() -> dict[str, Json]:
    """Every resource of the packaged FHIR package, keyed by canonical URL (without version).

    The dicts are copies: callers may change them freely.
    """
    return copy.deepcopy(_package()[0])


def package_manifest() -> Json:
    """The ``package.json`` of the packaged FHIR package (name, version, canonical, fhirVersions)."""
    return copy.deepcopy(_package()[1])


def _resource(resource_type: str, key: str) -> Json:
    url = key.split("|", 1)[0]
    if "/" not in url:
        url = f"{CANONICAL_BASE}/{resource_type}/{url}"
    found = _package()[0].get(url)
    if found is None or found.get("resourceType") != resource_type:
        raise KeyError(f"no packaged {resource_type} {key!r}")
    return copy.deepcopy(found)


def measure(measure_id: str) -> Json:
    """The packaged Measure ``measure_id`` (e.g. ``technical-success``; a canonical, versioned or not, works too).

    :raises KeyError: no such Measure in the package.
    """
    return _resource("Measure", measure_id)


def questionnaire(name: str) -> Json:
    """The packaged Questionnaire ``name`` (``villalta`` or ``civiq-20``; a canonical, versioned or not, works too).

    :raises KeyError: no such Questionnaire in the package.
    """
    return _resource("Questionnaire", name)
