"""Fetch the cohort with FHIR Bulk Data ``$export`` (system, Patient or Group level), as real servers speak it.

Kick-off with ``Prefer: respond-async``, ``_type`` limited to the needed types and a ``_typeFilter`` on the
Observation codes of the run's :class:`~fhir_pts.vocabulary.Vocabulary` (the contract's codes and every local code
a ConceptMap maps to them; when that filter would make the kick-off URL too long it is left out — the export is
then broader, never thinner); poll the status URL honouring ``Retry-After`` / ``X-Progress`` with capped backoff;
download the manifest's files in parallel, each streamed to a temporary file then renamed (:mod:`fhir_pts.atomic`);
then DELETE the job.
Transient answers (429, 503, a 500 ``transient`` OperationOutcome) are retried by the session
(:class:`~.http.FhirSession`) at every step.

What servers do differently, and what happens then:

- a type the server does not hold is refused at kick-off (400 "type … not available"): the type is dropped,
  the export asked again, and the missing contract input recorded as a *data gap* (:attr:`BulkExport.gaps`,
  problems.csv rows in :attr:`BulkExport.problems`);
- ``_typeFilter`` is an optimisation servers implement differently: an export that cannot be right under it
  (no Patient at all, or an OperationOutcome warning in the manifest's ``error`` files) is asked again without
  it (:attr:`BulkStats.fallbacks`);
- the manifest's ``error`` files are downloaded and read: one problem per OperationOutcome issue; an ``error``
  or ``fatal`` issue is a data gap (resources were not exported);
- the manifest's ``deleted`` files (transaction Bundles of DELETE entries) are read: a resource deleted on the
  server is not counted (one problem each when it was also in the output);
- a file that answers 410 Gone (expired) makes the export start over (at most :data:`MAX_EXPORTS` times).

A job state file in ``raw_dir`` (:data:`STATE_NAME`: status URL, manifest, files done) makes an interrupted run
resume instead of starting over. By default the export is then narrowed to the cohort exactly as the search mode
selects it (patients with an index stenting Procedure and their relevant resources, recognised through the same
vocabulary), into ``<Type>.ndjson``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import requests

from fhir_pts.atomic import AtomicFile, atomic_write_bytes
from fhir_pts.problems import Problem
from fhir_pts.vocabulary import Vocabulary

from .auth import NoAuth
from .bulk_files import (
    BulkExportError,
    BulkStats,
    count_lines,
    error_problems,
    move_into,
    read_deleted_files,
    read_error_files,
    select_into,
)
from .http import RequestRefused, RetryPolicy, check, retry_after
from .search import MAX_URL_LENGTH, PATIENT_TYPES, ProgressCallback, no_progress, token_list

log = logging.getLogger(__name__)

__all__ = ["BulkExport", "BulkExportError", "BulkRequest", "BulkStats", "ExportExpired", "fetch_by_bulk",
           "refused_type", "select_into", "type_filters_for"]

MAX_EXPORTS = 3  # kick-offs per run when files expire (410) mid-download
REQUIRED_TYPES = frozenset({"Patient", "Procedure"})  # without them there is no cohort
STATE_NAME = ".fhir-pts-bulk-state"  # JSON, but not *.json: the file pipeline must not read it as input
DOWNLOAD_DIR = ".bulk-download"
DEFAULT_TYPES: tuple[str, ...] = ("Patient", *PATIENT_TYPES)


def type_filters_for(vocabulary: Vocabulary) -> tuple[str, ...]:
    """The ``_typeFilter`` values for the run's vocabulary: Observations with a code the contract reads, local
    codes mapped by the ConceptMaps included; none when the filter would not fit in a kick-off URL (a broader
    export, narrowed here afterwards, rather than a dropped code)."""
    value = "Observation?" + urlencode({"code": token_list(vocabulary.observation_codings)})  # inner query escaped
    if len(urlencode({"_typeFilter": value})) > MAX_URL_LENGTH - 200:
        log.warning("_typeFilter of %d Observation codes too long for a kick-off URL; exporting every "
                    "Observation and narrowing here", len(vocabulary.observation_codings))
        return ()
    return (value,)


DEFAULT_TYPE_FILTERS: tuple[str, ...] = type_filters_for(Vocabulary())


@dataclass(frozen=True)
class BulkRequest:
    """What one export asks the server for: the ``$export`` level (``system`` | ``patient`` | ``group`` with
    ``group_id``), the resource ``types``, the ``_typeFilter`` values and ``_since``. With the base URL it is the
    key of the job state file: a resumed run asks the same."""

    level: str = "system"
    group_id: str | None = None
    types: tuple[str, ...] = DEFAULT_TYPES
    type_filters: tuple[str, ...] = DEFAULT_TYPE_FILTERS
    since: str | None = None

    def __post_init__(self) -> None:
        if self.level not in ("system", "patient", "group"):
            raise BulkExportError(f"export level {self.level!r} is not one of system, patient, group")
        if self.level == "group" and not self.group_id:
            raise BulkExportError("a Group-level export needs a group id")
        object.__setattr__(self, "types", tuple(self.types))
        object.__setattr__(self, "type_filters", tuple(self.type_filters))


class ExportExpired(BulkExportError):
    """A file of the manifest answered 410 Gone: the export has to be asked again."""


def refused_type(diagnostics: str, types: Sequence[str]) -> str | None:
    """The type a kick-off refusal names ("The requested resource type "X" is not available ..."): a quoted
    type of ``types`` first, else the only one of ``types`` the text names; None when it names none."""
    quoted = [t for t in types if re.search(rf"[\"'`]{t}[\"'`]", diagnostics)]
    if len(quoted) == 1:
        return quoted[0]
    named = [t for t in types if re.search(rf"\b{t}\b", diagnostics)]
    return named[0] if len(named) == 1 else None


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


class BulkExport:
    """One export job against one server, resumable through its state file: ``request`` (default: a system-level
    export of every type the contract reads), downloaded by ``workers`` threads, polled at most every
    ``poll_cap`` seconds for at most ``timeout`` seconds, each file tried ``download_attempts`` times."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        raw_dir: Path,
        request: BulkRequest | None = None,
        *,
        workers: int = 4,
        poll_cap: float = 30.0,
        timeout: float = 6 * 3600.0,
        download_attempts: int = 4,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.raw_dir = Path(raw_dir)
        self.request = request if request is not None else BulkRequest()  # what the caller asked; the state key
        # what the server is asked now: types it refuses and a _typeFilter it gets wrong are dropped as it goes
        self.types, self.type_filters = list(self.request.types), list(self.request.type_filters)
        self.workers, self.poll_cap, self.timeout = max(1, workers), poll_cap, timeout
        self.download_attempts = download_attempts
        self.stats = BulkStats()
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self.state_path = self.raw_dir / STATE_NAME
        self.download_dir = self.raw_dir / DOWNLOAD_DIR
        self.state: dict[str, Any] = {}
        self.problems: list[Problem] = []  # problems.csv rows: error-file issues, deleted resources, gaps
        self.gaps: list[str] = []  # contract inputs this export could not provide (results incomplete)
        self.deleted: set[tuple[str, str]] = set()  # (type, id) listed in the manifest's deleted files
        self.progress: ProgressCallback = no_progress  # told of each file downloaded

    # -- state ------------------------------------------------------------------------------------
    def _request_key(self) -> dict[str, Any]:
        request = self.request
        return {"base_url": self.base_url, "level": request.level, "group_id": request.group_id,
                "types": list(request.types), "type_filters": list(request.type_filters), "since": request.since}

    def _load_state(self) -> None:
        if not self.state_path.exists():
            self.state = {}
            return
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            log.warning("unreadable bulk state file %s; starting a new export", self.state_path)
            state = {}
        if state.get("request") != self._request_key():
            if state:
                log.warning("bulk state file %s is for another export; starting a new one", self.state_path)
            state = {}
        self.state = state

    def _save_state(self) -> None:
        with self._state_lock:
            with self._lock:  # a consistent snapshot while download threads record their files
                snapshot = orjson.loads(orjson.dumps(self.state))
            _write_json_atomic(self.state_path, snapshot)

    # -- steps ------------------------------------------------------------------------------------
    def kickoff_url(self) -> str:
        """The ``$export`` URL of this level."""
        if self.request.level == "system":
            return f"{self.base_url}/$export"
        if self.request.level == "patient":
            return f"{self.base_url}/Patient/$export"
        return f"{self.base_url}/Group/{self.request.group_id}/$export"

    def kickoff(self) -> str:
        """Start the export; return the status URL (Content-Location)."""
        params: list[tuple[str, str]] = [("_type", ",".join(self.types))]
        params += [("_typeFilter", f) for f in self.type_filters]
        if self.request.since:
            params.append(("_since", self.request.since))
        headers = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
        response = self.session.get(self.kickoff_url(), params=params, headers=headers)
        self.stats.requests += 1
        self.stats.kickoffs += 1
        check(response, self.base_url, "$export")
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise BulkExportError(
                f"$export kick-off at {self.kickoff_url()} answered {response.status_code} without a "
                "Content-Location (expected 202 Accepted and a status URL)"
            )
        if not self._same_origin(location):
            raise BulkExportError(f"$export status URL {location} is on another server than {self.base_url}")
        return location

    def kickoff_supported(self) -> str:
        """:meth:`kickoff`, dropping each type the server refuses as "not available" (a data gap) and asking
        again; Patient and Procedure cannot be dropped (no cohort without them)."""
        while True:
            try:
                return self.kickoff()
            except RequestRefused as e:
                rtype = refused_type(e.diagnostics, self.types) if e.status in (400, 404, 422) else None
                if rtype is None:
                    raise
                if rtype in REQUIRED_TYPES:
                    raise BulkExportError(
                        f"the server refuses to export {rtype} ({e.diagnostics}); there is no cohort without it"
                    ) from None
                log.warning("the server refuses to export %s (%s); asking again without it", rtype, e.diagnostics)
                self.stats.refused_types.append(rtype)
                self.types.remove(rtype)
                self.type_filters = [f for f in self.type_filters if not f.startswith(f"{rtype}?")]
                self._gap(rtype, f"the server refused to export it ({e.diagnostics})")

    def _gap(self, rtype: str, why: str) -> None:
        from .plan import gap_problem, gap_text

        self.problems.append(gap_problem(rtype, why))
        self.gaps.append(gap_text(rtype, why))

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def poll(self, status_url: str) -> dict | None:
        """Poll until the manifest is ready (returned) or the job is gone (None: 404/410)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.5
        while True:
            response = self.session.get(status_url, headers={"Accept": "application/json"})
            self.stats.requests += 1
            self.stats.polls += 1
            if response.status_code in (404, 410):
                return None
            if response.status_code == 202:
                given = retry_after(response)
                wait = min(self.poll_cap, delay if given is None else given)
                delay = min(self.poll_cap, delay * 2)
                log.info("bulk export in progress (%s); next poll in %.1f s",
                         response.headers.get("X-Progress", "?"), wait)
                if time.monotonic() + wait > deadline:
                    raise BulkExportError(f"bulk export at {status_url} not finished after {self.timeout:.0f} s")
                time.sleep(wait)
                continue
            check(response, self.base_url, "$export status")
            try:
                manifest = response.json()
            except ValueError:
                raise BulkExportError(f"bulk status {status_url} answered a manifest that is not JSON") from None
            if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
                raise BulkExportError(f"bulk status {status_url} answered a manifest without an output list")
            return manifest

    def _file_name(self, index: int, item: Mapping[str, Any]) -> str:
        rtype = str(item.get("type") or "Unknown")
        if not rtype.isalpha():
            raise BulkExportError(f"manifest output has an invalid type {rtype!r}")
        return f"{rtype}.{index:03d}.ndjson"

    def _download(self, url: str, target: Path, expected: int | None, requires_token: bool) -> int:
        """Stream one file to ``target`` (atomically, :class:`~fhir_pts.atomic.AtomicFile`); retried on dropped
        connections; returns bytes.
        Raises :class:`ExportExpired` at once when the file answers 410 Gone."""
        auth = None if self._same_origin(url) else NoAuth()
        if auth is not None and requires_token:
            raise BulkExportError(f"manifest file {url} is on another server but requires our access token")
        last_error: Exception | None = None
        policy = getattr(self.session, "policy", None) or RetryPolicy()  # the run's one retry policy
        for attempt in range(self.download_attempts):
            if attempt:  # a body cut off mid-way (the session already retried transient answers)
                time.sleep(policy.wait(attempt - 1))
            try:
                with self.session.get(url, headers={"Accept": "application/fhir+ndjson"}, stream=True,
                                      auth=auth) as response:
                    with self._lock:
                        self.stats.requests += 1
                    if response.status_code == 410:
                        raise ExportExpired(f"bulk file {url} answered 410 Gone (expired)")
                    check(response, self.base_url, "bulk file")
                    size, lines = 0, 0
                    with AtomicFile(target) as part:  # replaces target only when complete
                        for chunk in response.iter_content(chunk_size=1 << 16):
                            part.handle.write(chunk)
                            size += len(chunk)
                            lines += chunk.count(b"\n")
                        if expected is not None and lines < expected:
                            raise BulkExportError(f"{url}: {lines} lines received, the manifest announced {expected}")
                return size
            except ExportExpired:  # a BulkExportError not to retry
                raise
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, BulkExportError) as e:
                last_error = e
                log.warning("download of %s failed (attempt %d): %s", url, attempt + 1, type(e).__name__)
        raise BulkExportError(f"download of {url} failed after {self.download_attempts} attempts: {last_error}")

    def _jobs(self, manifest: dict, key: str, prefix: str = "") -> list[tuple[str, str, int | None]]:
        """(url, local name, announced count) of the manifest's ``key`` entries not yet downloaded."""
        done: dict[str, str] = self.state.setdefault("done", {})
        jobs = []
        for index, item in enumerate(manifest.get(key) or []):
            url = item.get("url") if isinstance(item, Mapping) else None
            if not isinstance(url, str):
                raise BulkExportError(f"manifest {key} entry without a url")
            name = prefix + self._file_name(index, item)
            if done.get(url) == name and (self.download_dir / name).exists():
                self.stats.files_resumed += 1
                continue
            count = item.get("count")
            jobs.append((url, name, int(count) if isinstance(count, int) and key == "output" else None))
        return jobs

    def _names(self, manifest: dict, key: str, prefix: str = "") -> list[Path]:
        return [self.download_dir / (prefix + self._file_name(i, item))
                for i, item in enumerate(manifest.get(key) or [])]

    def download_all(self, manifest: dict,
                     keys: Sequence[str] = ("output", "error", "deleted")) -> dict[str, list[Path]]:
        """Download every file of the manifest's ``keys`` not yet done (recorded in the state file after each);
        return them by key."""
        self.download_dir.mkdir(parents=True, exist_ok=True)
        done: dict[str, str] = self.state.setdefault("done", {})
        requires_token = bool(manifest.get("requiresAccessToken", True))
        prefixes = {"output": "", "error": "error.", "deleted": "deleted."}
        jobs = [job for key in keys for job in self._jobs(manifest, key, prefixes[key])]

        def fetch_one(url: str, name: str, count: int | None) -> None:
            size = self._download(url, self.download_dir / name, count, requires_token)
            with self._lock:  # recorded as soon as it is on disk: a later failure does not lose it
                done[url] = name
                self.stats.files_downloaded += 1
                self.stats.bytes += size
            self._save_state()

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fhir-bulk") as pool:
            futures = [pool.submit(fetch_one, url, name, count) for url, name, count in jobs]
            self.progress("Bulk download", "file", 0, len(jobs))
            try:
                for finished, future in enumerate(as_completed(futures), 1):
                    future.result()
                    self.progress("Bulk download", "file", finished, len(jobs))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return {key: self._names(manifest, key, prefixes[key]) for key in keys}

    def read_errors(self, paths: Sequence[Path]) -> list[tuple[str, Mapping[str, Any]]]:
        """The OperationOutcome issues of the manifest's error files, as ("file:line", issue)."""
        issues, problems = read_error_files(paths)
        self.problems += problems
        return issues

    def record_errors(self, issues: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """One problem per issue of the manifest's error files; ``error``/``fatal`` issues make a data gap."""
        problems, gap = error_problems(issues)
        self.problems += problems
        self.stats.error_issues += len(issues)
        if gap:
            self.gaps.append(gap)

    def read_deleted(self, paths: Sequence[Path]) -> None:
        """The (type, id) of every DELETE entry of the manifest's deleted files (transaction Bundles)."""
        keys, problems = read_deleted_files(paths)
        self.deleted |= keys
        self.problems += problems
        self.stats.deleted = len(self.deleted)

    def suspicious(self, manifest: Mapping[str, Any], issues: Sequence[tuple[str, Mapping[str, Any]]]) -> str | None:
        """Why an export made with ``_typeFilter`` cannot be right (no Patient at all; a warning in the
        error files), or None."""
        if not self.type_filters:
            return None
        warnings = [i for _, i in issues if i.get("severity") in ("warning", "information")]
        if warnings:
            text = warnings[0].get("diagnostics") or warnings[0].get("code")
            return f"the server warned about the export ({text})"
        if "Patient" in self.types and not any(
            isinstance(o, Mapping) and o.get("type") == "Patient" for o in manifest.get("output") or []
        ):
            return "the export has no Patient at all"
        return None

    def delete_job(self, status_url: str) -> None:
        """Tell the server the files can go (a failure here is only logged)."""
        try:
            response = self.session.delete(status_url)
            self.stats.requests += 1
            if response.status_code not in (200, 202, 204, 404):
                log.warning("DELETE of bulk job %s answered %s", status_url, response.status_code)
        except requests.RequestException as e:
            log.warning("DELETE of bulk job %s failed: %s", status_url, type(e).__name__)

    # -- whole run --------------------------------------------------------------------------------
    def _new_export(self) -> tuple[str, dict]:
        """Kick off (dropping refused types) and poll to the manifest; recorded in the state file."""
        shutil.rmtree(self.download_dir, ignore_errors=True)
        status_url = self.kickoff_supported()
        self.state = {"request": self._request_key(), "status_url": status_url, "done": {},
                      "types": self.types, "type_filters": self.type_filters,
                      "refused": self.stats.refused_types, "gaps": self.gaps}
        self._save_state()
        manifest = self.poll(status_url)
        if manifest is None:
            raise BulkExportError(f"bulk job {status_url} disappeared before it finished")
        return status_url, manifest

    def _manifest(self) -> tuple[str, dict]:
        """The status URL and manifest of the export: resumed from the state file, else started."""
        self._load_state()
        manifest = self.state.get("manifest")
        status_url = self.state.get("status_url")
        if self.state:
            self.types = list(self.state.get("types", self.types))
            self.type_filters = list(self.state.get("type_filters", self.type_filters))
            self.stats.refused_types = list(self.state.get("refused", []))
            self.gaps = list(self.state.get("gaps", []))
            from .plan import gap_problem

            self.problems += [gap_problem(t, "the server refused to export it") for t in self.stats.refused_types]
        if manifest is None and status_url:
            log.info("resuming bulk export %s", status_url)
            manifest = self.poll(status_url)
            if manifest is None:
                log.warning("bulk job %s is gone; starting a new export", status_url)
        if manifest is None:
            status_url, manifest = self._new_export()
        self.state["manifest"] = manifest
        self._save_state()
        return status_url, manifest

    def _restart(self, status_url: str, why: str) -> None:
        self.delete_job(status_url)
        shutil.rmtree(self.download_dir, ignore_errors=True)
        self.state = {}
        self.state_path.unlink(missing_ok=True)
        log.warning("%s; starting the export again", why)

    def run(self, select_cohort: bool = True, vocabulary: Vocabulary | None = None) -> list[Path]:
        """Kick off (or resume), poll, download, read error and deleted files, narrow to the cohort, DELETE the
        job; return the files. See the module docstring for what is done when the server misbehaves."""
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(MAX_EXPORTS):
            status_url, manifest = self._manifest()
            try:
                errors = self.download_all(manifest, ("error",))
                issues = self.read_errors(errors["error"])
                why = self.suspicious(manifest, issues)
                if why:
                    self.stats.fallbacks.append(why)
                    self.problems = [p for p in self.problems if p.field != "(bulk error file)"]
                    self.request = replace(self.request, type_filters=())  # a resumed run must not ask with it
                    self.type_filters = []
                    self._restart(status_url, f"export with _typeFilter cannot be right: {why}; without _typeFilter")
                    continue
                files = self.download_all(manifest)
                break
            except ExportExpired as e:
                self.stats.expired += 1
                self._restart(status_url, str(e))
        else:
            raise BulkExportError(f"the export's files expired (410) {self.stats.expired} times before they "
                                  f"could be downloaded; nothing computed")
        self.record_errors(issues)
        self.read_deleted(files["deleted"])
        downloads = files["output"]
        if not any(p.name.startswith("Patient.") and p.stat().st_size for p in downloads):
            log.warning("the export holds no Patient at all")
        paths = select_into(downloads, self.raw_dir, set(self.types), vocabulary, self.stats, self.deleted) \
            if select_cohort else move_into(downloads, self.raw_dir, self.deleted, self.stats.problems)
        self.delete_job(status_url)
        shutil.rmtree(self.download_dir, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
        return paths


def fetch_by_bulk(
    session: requests.Session,
    base_url: str,
    raw_dir: Path,
    level: str = "system",
    group_id: str | None = None,
    types: Sequence[str] = DEFAULT_TYPES,
    type_filters: Sequence[str] | None = None,
    *,
    since: str | None = None,
    workers: int = 4,
    select_cohort: bool = True,
    stats: BulkStats | None = None,
    poll_cap: float = 30.0,
    vocabulary: Vocabulary | None = None,
    progress: ProgressCallback = no_progress,
) -> list[Path]:
    """Bulk-export ``types`` at ``level`` (``system`` | ``patient`` | ``group`` with ``group_id``) into
    ``raw_dir``; resumes an interrupted export found there. With ``select_cohort`` (default) only the cohort's
    relevant resources are kept (as in :func:`~.search.fetch_by_search`), else the files are kept as exported.
    ``vocabulary``: the run's codes (default: the contract's alone); ``type_filters`` default to
    :func:`type_filters_for` it. ``stats`` (if given) receives what the export did, its problems.csv rows and
    its data gaps (contract inputs the server could not provide; ``incomplete`` then). ``progress`` is told of
    each file downloaded."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    if type_filters is None:
        type_filters = type_filters_for(vocabulary)
    request = BulkRequest(level, group_id, tuple(types), tuple(type_filters), since)
    job = BulkExport(session, base_url, raw_dir, request, workers=workers, poll_cap=poll_cap)
    if stats is not None:
        job.stats = stats
    job.progress = progress
    paths = job.run(select_cohort, vocabulary)
    job.stats.resources = {p.name.split(".")[0]: count_lines(p) for p in paths}
    job.stats.problems = [*job.problems, *job.stats.problems]
    job.stats.gaps = job.gaps
    job.stats.incomplete = job.stats.incomplete or bool(job.gaps)
    return paths


#END
