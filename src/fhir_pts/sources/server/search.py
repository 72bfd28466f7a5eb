"""Fetch the cohort's resources from a FHIR server with plain FHIR search.

1. Index procedures: ``Procedure?code=<every contract stenting code>&_include=Procedure:patient``.
2. For those patients, in batches of several patients per request (``patient=a,b,c``): Procedure,
   Observation (``code=`` the contract's observation codes), QuestionnaireResponse, AdverseEvent.

Every search follows the server's ``next`` links (page URLs are never built here), sends
``Prefer: handling=strict`` (a parameter the server cannot apply is an error, not "everything"), and runs in a
small bounded thread pool: the number of requests grows with pages, not with patients x types. If the server
rejects multi-patient searches, that batch is crawled one patient at a time. The server is not trusted to
filter: resources of other patients or with other codes are dropped here, and the file pipeline checks
everything again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from fhir_pts import codes
from fhir_pts.progress import progress

from .http import RequestRefused, ServerError, check
from .rawdir import NdjsonWriter

log = logging.getLogger(__name__)

STRICT = {"Prefer": "handling=strict"}
#: Observation codes of the contract (patency findings and score totals).
OBSERVATION_CODES: frozenset[codes.Coding] = frozenset(
    {codes.STENT_PATENCY, codes.VILLALTA_TOTAL, codes.CIVIQ20_TOTAL}
)
#: Types fetched per patient batch, with their fixed search parameters.
PATIENT_TYPES: tuple[str, ...] = ("Procedure", "Observation", "QuestionnaireResponse", "AdverseEvent")


def token_list(codings: Iterable[codes.Coding]) -> str:
    """``system|code,system|code,...`` (sorted, so URLs are stable), escaping FHIR's special characters."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")

    return ",".join(f"{esc(s)}|{esc(c)}" for s, c in sorted(codings))


def _codings(resource: dict) -> set[codes.Coding]:
    return {(c.get("system"), c.get("code")) for c in (resource.get("code") or {}).get("coding", []) or []}


def patient_of(resource: dict) -> str | None:
    """The Patient id a resource is about (``subject``/``patient`` reference), or None."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for element in ("subject", "patient"):
        ref = (resource.get(element) or {}).get("reference")
        if isinstance(ref, str):
            parts = ref.split("/_history/")[0].rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "Patient":
                return parts[-1]
    return None


@dataclass
class SearchStats:
    """What a search fetch did."""

    requests: int = 0
    pages: int = 0
    patients: int = 0
    resources: dict[str, int] = field(default_factory=dict)
    dropped: int = 0  # resources the server returned that the query should have excluded
    fallbacks: int = 0  # batches crawled one patient at a time
    outcomes: list[str] = field(default_factory=list)  # OperationOutcome diagnostics found in search bundles


class Searcher:
    """Follows searches to their last page on one server, counting requests and pages."""

    def __init__(self, session: requests.Session, base_url: str, page_size: int = 1000) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.stats = SearchStats()
        self._lock = threading.Lock()
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)

    def count(self, requests: int = 0, pages: int = 0, dropped: int = 0) -> None:
        """Add to the statistics (thread-safe)."""
        with self._lock:
            self.stats.requests += requests
            self.stats.pages += pages
            self.stats.dropped += dropped

    def _check_origin(self, url: str) -> None:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise ServerError(
                f"refusing to follow a paging link to another server ({parts.scheme}://{parts.netloc}); "
                f"the base URL is {self.base_url}"
            )

    def pages(self, resource_type: str, params: dict[str, str]) -> Iterator[dict]:
        """Every page (searchset Bundle) of ``resource_type?params``, following ``next`` links only."""
        url: str | None = f"{self.base_url}/{resource_type}"
        query: dict[str, str] | None = {**params, "_count": str(self.page_size)}
        seen: set[str] = set()
        while url:
            response = self.session.get(url, params=query, headers=STRICT)
            self.count(requests=1)
            check(response, self.base_url, resource_type)
            try:
                bundle = response.json()
            except ValueError:
                raise ServerError(f"search {resource_type} answered something that is not JSON") from None
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise ServerError(f"search {resource_type} did not answer a Bundle")
            self.count(pages=1)
            yield bundle
            url = next((link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            query = None
            if url:
                self._check_origin(url)
                if url in seen:
                    raise ServerError(f"search {resource_type}: the server repeated a next link (paging loop)")
                seen.add(url)

    def resources(self, resource_type: str, params: dict[str, str]) -> Iterator[tuple[str, dict]]:
        """``(search mode, resource)`` of every entry of every page; outcomes are logged, not returned."""
        for bundle in self.pages(resource_type, params):
            for entry in bundle.get("entry", []) or []:
                resource = entry.get("resource")
                if not isinstance(resource, dict):
                    continue
                mode = (entry.get("search") or {}).get("mode", "match")
                if resource.get("resourceType") == "OperationOutcome":
                    for issue in resource.get("issue", []):
                        text = f"{resource_type}: {issue.get('severity')}: {issue.get('diagnostics')}"
                        self.stats.outcomes.append(text)
                        log.warning("server search outcome: %s", text)
                    continue
                yield mode, resource


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _type_params(resource_type: str) -> dict[str, str]:
    if resource_type == "Observation":
        return {"code": token_list(OBSERVATION_CODES)}
    return {}


def _keep(resource_type: str, resource: dict, patients: set[str]) -> bool:
    """Re-check what the server was asked to filter: the right type, one of our patients, the right code."""
    if resource.get("resourceType") != resource_type or patient_of(resource) not in patients:
        return False
    return resource_type != "Observation" or bool(_codings(resource) & OBSERVATION_CODES)


def fetch_by_search(
    session: requests.Session,
    base_url: str,
    raw_dir: Path,
    *,
    page_size: int = 1000,
    patients_per_request: int = 50,
    workers: int = 4,
    stats: SearchStats | None = None,
) -> list[Path]:
    """Fetch the cohort (patients with an index stenting Procedure and their relevant resources) into
    ``raw_dir`` as ``<Type>.ndjson`` files; return the files written. ``stats`` (if given) is filled in."""
    searcher = Searcher(session, base_url, page_size)
    if stats is not None:
        searcher.stats = stats
    writer = NdjsonWriter(Path(raw_dir))
    try:
        patients = _fetch_index(searcher, writer)
        searcher.stats.patients = len(patients)
        ordered = sorted(patients)
        batches = _batches(ordered, max(1, patients_per_request))
        tasks = [(rtype, batch) for batch in batches for rtype in PATIENT_TYPES]
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fhir-search") as pool, \
                progress(total=len(tasks), desc="FHIR search", unit="search") as bar:
            futures = [pool.submit(_fetch_batch, searcher, writer, rtype, batch) for rtype, batch in tasks]
            for future in as_completed(futures):
                future.result()
                bar.update(1)
        missing = sorted(patients - writer.seen("Patient"))
        for batch in _batches(missing, max(1, patients_per_request)):
            for _, resource in searcher.resources("Patient", {"_id": ",".join(batch)}):
                if resource.get("resourceType") == "Patient" and resource.get("id") in patients:
                    writer.add(resource)
        paths = writer.close(ensure_types=("Patient", *PATIENT_TYPES))
    except BaseException:
        writer.abort()
        raise
    searcher.stats.resources = dict(writer.counts)
    log.info(
        "search fetch: %d patients, %d requests, %d pages, %s", len(patients), searcher.stats.requests,
        searcher.stats.pages, writer.counts,
    )
    return paths


def _fetch_index(searcher: Searcher, writer: NdjsonWriter) -> set[str]:
    """Index-procedure search (with the patients included); returns the cohort's patient ids."""
    params = {"code": token_list(codes.VENOUS_STENTING), "_include": "Procedure:patient"}
    patients: set[str] = set()
    included: list[dict] = []
    for mode, resource in searcher.resources("Procedure", params):
        rtype = resource.get("resourceType")
        if rtype == "Procedure" and _codings(resource) & codes.VENOUS_STENTING:
            pid = patient_of(resource)
            if pid:
                patients.add(pid)
                writer.add(resource)
        elif rtype == "Patient" and mode == "include":
            included.append(resource)
        else:
            searcher.count(dropped=1)
    for p in included:
        if p.get("id") in patients:
            writer.add(p)
    return patients


def _fetch_batch(searcher: Searcher, writer: NdjsonWriter, resource_type: str, batch: list[str]) -> None:
    """One type for a batch of patients; per-patient crawl if the server refuses the multi-patient search."""
    wanted = set(batch)
    params = {**_type_params(resource_type), "patient": ",".join(batch)}
    try:
        _collect(searcher, writer, resource_type, params, wanted)
    except RequestRefused as e:
        if len(batch) == 1 or e.status not in (400, 414, 422):
            raise
        log.warning("%s: multi-patient search refused (%s); crawling %d patients one by one",
                    resource_type, e.status, len(batch))
        searcher.stats.fallbacks += 1
        for pid in batch:
            _collect(searcher, writer, resource_type, {**_type_params(resource_type), "patient": pid}, {pid})


def _collect(searcher: Searcher, writer: NdjsonWriter, resource_type: str, params: dict[str, str],
             wanted: set[str]) -> None:
    for _, resource in searcher.resources(resource_type, params):
        if _keep(resource_type, resource, wanted):
            writer.add(resource)
        else:
            searcher.count(dropped=1)
