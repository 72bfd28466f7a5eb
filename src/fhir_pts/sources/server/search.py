"""Fetch the cohort's resources from a FHIR server with plain FHIR search.

1. Index procedures: ``Procedure?code=<every stenting code>&_include=Procedure:patient``; Patients the
   server did not include (it ignored ``_include``) are then fetched by id.
2. For those patients, in batches of several patients per request (``patient=a,b,c``): Procedure,
   Observation (``code=`` the contract's observation codes), QuestionnaireResponse, AdverseEvent.

"Every code" is the run's :class:`~fhir_pts.vocabulary.Vocabulary`: the contract's codes plus every site-local
code a given ConceptMap maps to one of them. No code is ever dropped to keep a URL short: a search whose URL
would exceed :data:`MAX_URL_LENGTH` is sent as ``POST [type]/_search`` (form body), and when the server refuses
that, its longest comma list is split over several searches whose results are united.

The first page's ``self`` link is compared with the parameters sent: a parameter the server dropped is logged
and recorded as a warning problem (the client-side re-check below still makes the result exact when the
server returns too much). A cohort patient that cannot be fetched completely is a problem and marks the fetch
incomplete (``SearchStats.incomplete``; the CLI then exits non-zero).

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
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from fhir_pts import codes
from fhir_pts.problems import Problem
from fhir_pts.vocabulary import Vocabulary

from .http import RequestRefused, RetryPolicy, ServerError, check
from .rawdir import NdjsonWriter

log = logging.getLogger(__name__)

#: A progress callback, ``(what, unit, done, total)``, called after each step of a long fetch ("FHIR search",
#: "Bulk download") in the calling thread. The face draws it (the CLI: :func:`fhir_pts.progress.stage_bars`);
#: sources draw nothing themselves.
ProgressCallback = Callable[[str, str, int, int], None]


def no_progress(what: str, unit: str, done: int, total: int) -> None:
    """The default :data:`ProgressCallback`: nothing is shown."""

STRICT = {"Prefer": "handling=strict"}
#: Most pages one search may take (``max_pages``; a server that pages forever is stopped there).
MAX_PAGES = 10_000
#: Pages allowed beyond what the server's ``total`` implies (page sizes the server may have lowered).
PAGE_SLACK = 2
#: Observation codes of the contract (patency findings and score totals), without ConceptMaps.
OBSERVATION_CODES: frozenset[codes.Coding] = codes.OBSERVATION_CODES
#: A search URL longer than this (characters) is sent as ``POST [type]/_search`` instead (many servers and
#: proxies refuse URLs of 4–8 kB; 2000 is the classic safe limit).
MAX_URL_LENGTH = 2000
#: Parameters a server may rewrite in its ``self`` link without having ignored them.
_PAGING_PARAMETERS = frozenset({"_count", "_offset", "_getpages", "_page", "page", "_format"})
#: Types fetched per patient batch, with their fixed search parameters.
PATIENT_TYPES: tuple[str, ...] = ("Procedure", "Observation", "QuestionnaireResponse", "AdverseEvent")


def token_list(codings: Iterable[codes.Coding]) -> str:
    """``system|code,system|code,...`` (sorted, so URLs are stable), escaping FHIR's special characters."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")

    return ",".join(f"{esc(s)}|{esc(c)}" for s, c in sorted(codings))


def patient_of(resource: dict) -> str | None:
    """The Patient id a resource is about (``subject``/``patient`` reference), or None.

    Reads references as the file pipeline does (``Patient/id``, absolute, versioned, ``urn:uuid:<id>``)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for element in ("subject", "patient"):
        value = resource.get(element)
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str):
            if ref.startswith("urn:uuid:"):
                return ref[len("urn:uuid:") :] or None
            parts = ref.split("?", 1)[0].split("/_history/")[0].split("/")
            if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
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
    posted: int = 0  # searches sent as POST [type]/_search (URL too long for GET)
    split: int = 0  # searches split because the server refused POST _search
    dropped_parameters: dict[str, list[str]] = field(default_factory=dict)  # type -> parameters the server ignored
    problems: list[Problem] = field(default_factory=list)  # cohort data that could not be fetched, ignored params
    incomplete: bool = False  # a cohort patient's data could not be fetched completely


class Searcher:
    """Follows searches to their last page on one server, counting requests and pages."""

    def __init__(
        self, session: requests.Session, base_url: str, page_size: int = 1000, max_pages: int = MAX_PAGES
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages
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
        """Every page (searchset Bundle) of ``resource_type?params``, following ``next`` links only.

        A URL longer than :data:`MAX_URL_LENGTH` is sent as ``POST [type]/_search``; if the server refuses
        that (404/405/501 or 400/414/422 naming nothing else), the query is split (see :func:`split_query`)
        and the pages of every part are yielded in turn.
        """
        query = {**params, "_count": str(self.page_size)}
        url = f"{self.base_url}/{resource_type}"
        if len(url) + 1 + len(urlencode(query)) <= MAX_URL_LENGTH:
            yield from self._follow(resource_type, query, self.session.get(url, params=query, headers=STRICT))
            return
        with self._lock:
            self.stats.posted += 1
        response = self.session.post(
            f"{url}/_search", data=query,
            headers={**STRICT, "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        if response.status_code in (400, 404, 405, 414, 422, 501):
            parts = split_query(query, MAX_URL_LENGTH - len(url) - 1)
            if len(parts) > 1:
                self.count(requests=1)
                log.warning("%s: POST _search refused (%s); splitting the query in %d searches",
                            resource_type, response.status_code, len(parts))
                with self._lock:
                    self.stats.split += 1
                for part in parts:
                    yield from self._follow(resource_type, part, self.session.get(url, params=part, headers=STRICT))
                return
        yield from self._follow(resource_type, query, response)

    def _json(self, response: requests.Response) -> tuple[requests.Response, object]:
        """The parsed body of a search answer; a successful answer whose body does not parse (a page cut off
        with a correct ``Content-Length``) is sent again under the session's :class:`~.http.RetryPolicy`."""
        policy: RetryPolicy = getattr(self.session, "policy", None) or RetryPolicy()
        for attempt in policy.delays():
            if not response.ok:
                return response, None
            try:
                return response, response.json()
            except ValueError:
                if attempt >= policy.retries or response.request is None:
                    break
                wait = policy.wait(attempt)
                log.warning("search: the answer is not complete JSON; retry %d/%d in %.1f s", attempt + 1,
                            policy.retries, wait)  # fmt: skip
                time.sleep(wait)
                self.count(requests=1)
                response = self.session.send(response.request, timeout=getattr(self.session, "default_timeout", None))
        raise ServerError(f"search answered something that is not JSON, {policy.retries + 1} times")

    def _follow(self, resource_type: str, sent: dict[str, str], response: requests.Response) -> Iterator[dict]:
        """The first page (``response``), then every page its ``next`` links lead to.

        A search that does not end is stopped with a :class:`ServerError`: a ``next`` link seen before, a page
        whose entries were all on earlier pages (a loop behind fresh cursors), more pages than the server's
        ``total`` allows (plus :data:`PAGE_SLACK`) or than ``max_pages``.
        """
        seen: set[str] = set()
        seen_entries: set[tuple[str, str, str]] = set()
        page_limit = self.max_pages
        pages = 0
        first = True
        while True:
            self.count(requests=1)
            response, bundle = self._json(response)
            check(response, self.base_url, resource_type)
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise ServerError(f"search {resource_type} did not answer a Bundle")
            self.count(pages=1)
            pages += 1
            entries = _entry_keys(bundle)
            if entries and entries <= seen_entries:
                raise ServerError(f"search {resource_type}: page {pages} repeats earlier pages (paging loop)")
            seen_entries |= entries
            if first:
                self._check_self_link(resource_type, sent, bundle)
                first = False
                total = bundle.get("total")
                if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
                    matches = sum(1 for e in bundle.get("entry", []) or [] if _mode(e) == "match")
                    per_page = max(1, min(matches or self.page_size, self.page_size))
                    page_limit = min(self.max_pages, -(-total // per_page) + PAGE_SLACK)
            yield bundle
            if pages >= page_limit and any(link.get("relation") == "next" for link in bundle.get("link", []) or []):
                raise ServerError(
                    f"search {resource_type}: stopped after {pages} pages, more than "
                    + ("its total allows" if page_limit < self.max_pages else f"the limit of {self.max_pages} pages")
                    + " (the server keeps sending next links)"
                )
            url = next((link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            if not url:
                return
            self._check_origin(url)
            if url in seen:
                raise ServerError(f"search {resource_type}: the server repeated a next link (paging loop)")
            seen.add(url)
            response = self.session.get(url, headers=STRICT)

    def _check_self_link(self, resource_type: str, sent: dict[str, str], bundle: dict) -> None:
        """Record the parameters the server left out of its ``self`` link (it ignored them)."""
        self_url = next((link.get("url") for link in bundle.get("link", []) or []
                         if isinstance(link, dict) and link.get("relation") == "self"), None)  # fmt: skip
        if not isinstance(self_url, str):
            return
        dropped = dropped_parameters(sent, self_url)
        if not dropped:
            return
        with self._lock:
            known = self.stats.dropped_parameters.setdefault(resource_type, [])
            new = [name for name in dropped if name not in known]
            known.extend(new)
            for name in new:
                self.stats.problems.append(Problem(
                    resource_type, None, name,
                    f"the server ignored the search parameter {name!r} (absent from its self link): it answered "
                    "more (or, for _include, less) than asked; every resource was re-checked here",
                    "warning",
                ))  # fmt: skip
        for name in new:
            log.warning("server ignored the %s search parameter %r (not in its self link)", resource_type, name)

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


def dropped_parameters(sent: dict[str, str], self_url: str) -> list[str]:
    """Names of parameters of ``sent`` that a ``self`` link does not carry (paging parameters aside).

    A ``self`` link without any query says nothing (some servers never echo the query): nothing is reported.
    """
    query = urlsplit(self_url).query
    if not query:
        return []
    echoed = {name.split(":", 1)[0] for name, _ in parse_qsl(query, keep_blank_values=True)}
    return [name for name in sent if name not in _PAGING_PARAMETERS and name.split(":", 1)[0] not in echoed]


def _split_list(value: str) -> list[str]:
    """The items of a FHIR comma list (an escaped comma ``\\,`` does not split)."""
    items, current, escaped = [], [], False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def split_query(query: dict[str, str], limit: int) -> list[dict[str, str]]:
    """``query`` split into queries whose encoding fits in ``limit`` characters, by halving its longest comma
    list (OR semantics: the union of the parts' results is the original result). No value is ever dropped;
    a query that cannot be split further is returned as it is."""
    if len(urlencode(query)) <= limit:
        return [query]
    name = max(query, key=lambda key: len(query[key]))
    items = _split_list(query[name])
    if len(items) < 2:
        return [query]
    half = len(items) // 2
    return [part for chunk in (items[:half], items[half:])
            for part in split_query({**query, name: ",".join(chunk)}, limit)]  # fmt: skip


def _mode(entry: object) -> str:
    search = entry.get("search") if isinstance(entry, dict) else None
    return str(search.get("mode", "match")) if isinstance(search, dict) else "match"


def _entry_keys(bundle: dict) -> set[tuple[str, str, str]]:
    """(type, id, versionId) of the entries of a page, to recognise a page that repeats earlier ones."""
    keys = set()
    for entry in bundle.get("entry", []) or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            meta = resource.get("meta")
            version = str(meta.get("versionId", "")) if isinstance(meta, dict) else ""
            keys.add((str(resource.get("resourceType")), str(resource.get("id")), version))
    return keys


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _type_params(resource_type: str, vocabulary: Vocabulary) -> dict[str, str]:
    if resource_type == "Observation":
        return {"code": token_list(vocabulary.observation_codings)}
    return {}


def is_index_procedure(resource: dict, vocabulary: Vocabulary) -> bool:
    """A Procedure coded (directly or through the vocabulary's ConceptMaps) as venous stenting."""
    return resource.get("resourceType") == "Procedure" and vocabulary.matches(
        resource.get("code"), codes.VENOUS_STENTING
    )


def keep(resource_type: str, resource: dict, patients: set[str], vocabulary: Vocabulary) -> bool:
    """Re-check what the server was asked to filter: the right type, one of our patients, the right code
    (through the same vocabulary the adapters use)."""
    if resource.get("resourceType") != resource_type:
        return False
    patient = patient_of(resource)  # unreadable (``Patient/``): kept, the file pipeline reports it
    if patient is not None and patient not in patients:
        return False
    return resource_type != "Observation" or vocabulary.matches(resource.get("code"), vocabulary.observation_codes)


def fetch_by_search(
    session: requests.Session,
    base_url: str,
    raw_dir: Path,
    *,
    page_size: int = 1000,
    max_pages: int = MAX_PAGES,
    patients_per_request: int = 50,
    workers: int = 4,
    stats: SearchStats | None = None,
    vocabulary: Vocabulary | None = None,
    types: Iterable[str] = ("Patient", *PATIENT_TYPES),
    progress: ProgressCallback = no_progress,
) -> list[Path]:
    """Fetch the cohort (patients with an index stenting Procedure and their relevant resources) into
    ``raw_dir`` as ``<Type>.ndjson`` files; return the files written. ``stats`` (if given) is filled in,
    its ``problems`` and ``incomplete`` included. ``vocabulary``: the run's codes (default: the contract's
    alone, no ConceptMap). ``types`` limits the per-patient searches (a type the server offers no search for
    is left out). ``progress`` is told of each finished search."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    wanted_types = [t for t in PATIENT_TYPES if t in set(types)]
    searcher = Searcher(session, base_url, page_size, max_pages)
    if stats is not None:
        searcher.stats = stats
    writer = NdjsonWriter(Path(raw_dir))
    try:
        patients = _fetch_index(searcher, writer, vocabulary)
        searcher.stats.patients = len(patients)
        ordered = sorted(patients)
        batches = _batches(ordered, max(1, patients_per_request))
        tasks = [(rtype, batch) for batch in batches for rtype in wanted_types]
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fhir-search") as pool:
            futures = [pool.submit(_fetch_batch, searcher, writer, rtype, batch, vocabulary) for rtype, batch in tasks]
            progress("FHIR search", "search", 0, len(tasks))
            for done, future in enumerate(as_completed(futures), 1):
                future.result()
                progress("FHIR search", "search", done, len(tasks))
        _fetch_missing_patients(searcher, writer, patients, patients_per_request)
        paths = writer.close(ensure_types=("Patient", *wanted_types))
    except BaseException:
        writer.abort()
        raise
    searcher.stats.resources = dict(writer.counts)
    log.info(
        "search fetch: %d patients, %d requests, %d pages, %s", len(patients), searcher.stats.requests,
        searcher.stats.pages, writer.counts,
    )
    return paths


def _fetch_missing_patients(searcher: Searcher, writer: NdjsonWriter, patients: set[str], per_request: int) -> None:
    """Fetch by id the cohort Patients the index search did not include (a server that ignores ``_include``
    or leaves some out); a Patient still missing is a problem and makes the fetch incomplete."""
    missing = sorted(patients - writer.seen("Patient"))
    if missing:
        log.info("%d cohort Patients were not included by the server; fetching them by id", len(missing))
    for batch in _batches(missing, max(1, per_request)):
        for _, resource in searcher.resources("Patient", {"_id": ",".join(batch)}):
            if resource.get("resourceType") == "Patient" and resource.get("id") in patients:
                writer.add(resource)
    for pid in sorted(patients - writer.seen("Patient")):
        searcher.stats.incomplete = True
        searcher.stats.problems.append(Problem(
            "Patient", pid, "id",
            "the server has an index stenting Procedure of this patient but did not return the Patient "
            "(neither by _include nor by _id): sex and age are unknown, the patient is left out of the cohort",
            patient_id=pid,
        ))  # fmt: skip


def _fetch_index(searcher: Searcher, writer: NdjsonWriter, vocabulary: Vocabulary) -> set[str]:
    """Index-procedure search (with the patients included); returns the cohort's patient ids."""
    params = {"code": token_list(vocabulary.index_procedure_codings), "_include": "Procedure:patient"}
    patients: set[str] = set()
    included: list[dict] = []
    try:
        found = list(searcher.resources("Procedure", params))
    except RequestRefused as e:
        if e.status not in (404, 405, 501):
            raise
        raise ServerError(f"this server offers no search for Procedure (it answered {e.status}); use --bulk") \
            from None
    for mode, resource in found:
        rtype = resource.get("resourceType")
        if rtype == "Procedure" and is_index_procedure(resource, vocabulary):
            pid = patient_of(resource)
            if pid:
                patients.add(pid)
            writer.add(resource)  # without a readable patient too: the file pipeline reports it, as for files
        elif rtype == "Patient" and mode == "include":
            included.append(resource)
        else:
            searcher.count(dropped=1)
    for p in included:
        if p.get("id") in patients:
            writer.add(p)
    return patients


def _fetch_batch(searcher: Searcher, writer: NdjsonWriter, resource_type: str, batch: list[str],
                 vocabulary: Vocabulary) -> None:  # fmt: skip
    """One type for a batch of patients; per-patient crawl if the server refuses the multi-patient search."""
    wanted = set(batch)
    params = {**_type_params(resource_type, vocabulary), "patient": ",".join(batch)}
    try:
        _collect(searcher, writer, resource_type, params, wanted, vocabulary)
    except RequestRefused as e:
        if len(batch) == 1 or e.status not in (400, 414, 422):
            raise
        log.warning("%s: multi-patient search refused (%s); crawling %d patients one by one",
                    resource_type, e.status, len(batch))
        searcher.stats.fallbacks += 1
        for pid in batch:
            _collect(searcher, writer, resource_type, {**_type_params(resource_type, vocabulary), "patient": pid},
                     {pid}, vocabulary)  # fmt: skip


def _collect(searcher: Searcher, writer: NdjsonWriter, resource_type: str, params: dict[str, str],
             wanted: set[str], vocabulary: Vocabulary) -> None:  # fmt: skip
    for _, resource in searcher.resources(resource_type, params):
        if keep(resource_type, resource, wanted, vocabulary):
            writer.add(resource)
        else:
            searcher.count(dropped=1)
