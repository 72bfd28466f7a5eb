"""ConceptMaps kept on the FHIR server (its terminology service): ``--concept-map https://…/ConceptMap/x[|version]``.

A canonical is resolved with ``GET [base]/ConceptMap?url=<canonical>[&version=<version>]``. Exactly one ConceptMap
must answer: none is an error naming the canonical ("not on this server"), several versions without a
``|version`` in the argument is an error listing them (a silent pick could change the numbers).
"""

from __future__ import annotations

from typing import Any

import requests

from fhir_pts.errors import InputError
from fhir_pts.vocabulary import MapSource

from .http import check


def split_canonical(reference: str) -> tuple[str, str | None]:
    """``url|version`` → ``(url, version)``; a bare URL gives ``(url, None)``."""
    url, sep, version = reference.partition("|")
    return url, (version or None) if sep else None


def fetch_concept_map(session: requests.Session, base_url: str, reference: str) -> tuple[dict[str, Any], MapSource]:
    """The ConceptMap a canonical reference names, read from the server, and its provenance.

    :raises InputError: the server holds no ConceptMap with that canonical (and version), or several versions
        and none was asked for.
    """
    url, version = split_canonical(reference)
    params = {"url": url, **({"version": version} if version else {})}
    base = base_url.rstrip("/")
    response = check(session.get(f"{base}/ConceptMap", params=params, headers={"Prefer": "handling=strict"}),
                     base, "ConceptMap")  # fmt: skip
    bundle = response.json()
    found = [
        entry["resource"] for entry in (bundle.get("entry") or [])
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") == "ConceptMap"
        and entry["resource"].get("url") == url  # a server that ignored ?url= must not hand us another map
        and (version is None or entry["resource"].get("version") == version)
    ]  # fmt: skip
    if not found:
        asked = f"{url}|{version}" if version else url
        raise InputError(
            f"--concept-map {asked}: no ConceptMap with this canonical on the server {base} "
            f"(ConceptMap?url= found none); load it there, or give the ConceptMap as a JSON file"
        )
    if len(found) > 1:
        versions = ", ".join(sorted(str(cm.get("version")) for cm in found))
        raise InputError(
            f"--concept-map {url}: the server {base} holds {len(found)} ConceptMaps with this canonical "
            f"(versions {versions}); name one as {url}|VERSION"
        )
    concept_map = found[0]
    location = f"{base}/ConceptMap/{concept_map.get('id', '?')}"
    meta = concept_map.get("meta") if isinstance(concept_map.get("meta"), dict) else {}
    version_id = meta.get("versionId") if isinstance(meta, dict) else None
    if version_id is not None:
        location += f"/_history/{version_id}"
    found_version = concept_map.get("version")
    return concept_map, MapSource("server", location, url, found_version if isinstance(found_version, str) else None)
