"""Fetch the cohort with FHIR Bulk Data ``$export`` (system, Patient or Group level).

Kick-off with ``Prefer: respond-async``, ``_type`` limited to the needed types and a ``_typeFilter`` on the
Observation codes of the run's :class:`~fhir_pts.vocabulary.Vocabulary` (the contract's codes and every local code
a ConceptMap maps to them; when that filter would make the kick-off URL too long it is left out — the export is
then broader, never thinner); poll the status URL honouring ``Retry-After`` / ``X-Progress`` with capped backoff;
download the manifest's files in parallel, streamed to ``.part`` files then renamed; then DELETE the job.

A job state file in ``raw_dir`` (:data:`STATE_NAME`: status URL, manifest, files done) makes an interrupted run
resume instead of starting over. By default the export is then narrowed to the cohort exactly as the search mode
selects it (patients with an index stenting Procedure and their relevant resources, recognised through the same
vocabulary), into ``<Type>.ndjson``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import requests

from fhir_pts.problems import Problem
from fhir_pts.progress import progress
from fhir_pts.vocabulary import Vocabulary

from .auth import NoAuth
from .http import ServerError, check
from .rawdir import NdjsonWriter
from .search import MAX_URL_LENGTH, PATIENT_TYPES, is_index_procedure, keep, patient_of, token_list

log = logging.getLogger(__name__)

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


class BulkExportError(ServerError):
    """The export could not be completed (the message says at which step)."""


@dataclass
class BulkStats:
    """What a bulk fetch did."""

    requests: int = 0
    kickoffs: int = 0
    polls: int = 0
    files_downloaded: int = 0
    files_resumed: int = 0
    bytes: int = 0
    resources: dict[str, int] | None = None
    problems: list[Problem] = field(default_factory=list)  # what the export could not give (problems.csv rows)
    incomplete: bool = False  # some cohort patient's data could not be exported completely


def _retry_after(response: requests.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    if not value:
        return default
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return default


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(part, path)


class BulkExport:
    """One export job against one server, resumable through its state file."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        raw_dir: Path,
        level: str = "system",
        group_id: str | None = None,
        types: Sequence[str] = DEFAULT_TYPES,
        type_filters: Sequence[str] = DEFAULT_TYPE_FILTERS,
        since: str | None = None,
        workers: int = 4,
        poll_cap: float = 30.0,
        timeout: float = 6 * 3600.0,
        download_attempts: int = 4,
    ) -> None:
        if level not in ("system", "patient", "group"):
            raise BulkExportError(f"export level {level!r} is not one of system, patient, group")
        if level == "group" and not group_id:
            raise BulkExportError("a Group-level export needs a group id")
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.raw_dir = Path(raw_dir)
        self.level, self.group_id = level, group_id
        self.types, self.type_filters, self.since = list(types), list(type_filters), since
        self.workers, self.poll_cap, self.timeout = max(1, workers), poll_cap, timeout
        self.download_attempts = download_attempts
        self.stats = BulkStats()
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self.state_path = self.raw_dir / STATE_NAME
        self.download_dir = self.raw_dir / DOWNLOAD_DIR
        self.state: dict[str, Any] = {}

    # -- state ------------------------------------------------------------------------------------
    def _request_key(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "level": self.level, "group_id": self.group_id, "types": self.types,
                "type_filters": self.type_filters, "since": self.since}

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
        if self.level == "system":
            return f"{self.base_url}/$export"
        if self.level == "patient":
            return f"{self.base_url}/Patient/$export"
        return f"{self.base_url}/Group/{self.group_id}/$export"

    def kickoff(self) -> str:
        """Start the export; return the status URL (Content-Location)."""
        params: list[tuple[str, str]] = [("_type", ",".join(self.types))]
        params += [("_typeFilter", f) for f in self.type_filters]
        if self.since:
            params.append(("_since", self.since))
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
                wait = min(self.poll_cap, _retry_after(response, delay))
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
        """Stream one file to ``target`` (via .part); retried on dropped connections; returns bytes."""
        auth = None if self._same_origin(url) else NoAuth()
        if auth is not None and requires_token:
            raise BulkExportError(f"manifest file {url} is on another server but requires our access token")
        part = target.with_name(target.name + ".part")
        last_error: Exception | None = None
        for attempt in range(self.download_attempts):
            if attempt:
                time.sleep(min(self.poll_cap, 0.5 * 2**attempt))
            try:
                with self.session.get(url, headers={"Accept": "application/fhir+ndjson"}, stream=True,
                                      auth=auth) as response:
                    with self._lock:
                        self.stats.requests += 1
                    check(response, self.base_url, "bulk file")
                    size, lines = 0, 0
                    with part.open("wb") as f:
                        for chunk in response.iter_content(chunk_size=1 << 16):
                            f.write(chunk)
                            size += len(chunk)
                            lines += chunk.count(b"\n")
                        f.flush()
                        os.fsync(f.fileno())
                if expected is not None and lines < expected:
                    raise BulkExportError(f"{url}: {lines} lines received, the manifest announced {expected}")
                os.replace(part, target)
                return size
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, BulkExportError) as e:
                last_error = e
                log.warning("download of %s failed (attempt %d): %s", url, attempt + 1, type(e).__name__)
        part.unlink(missing_ok=True)
        raise BulkExportError(f"download of {url} failed after {self.download_attempts} attempts: {last_error}")

    def download_all(self, manifest: dict) -> list[Path]:
        """Download every output file not yet done (recorded in the state file after each)."""
        self.download_dir.mkdir(parents=True, exist_ok=True)
        done: dict[str, str] = self.state.setdefault("done", {})
        requires_token = bool(manifest.get("requiresAccessToken", True))
        jobs = []
        for index, item in enumerate(manifest.get("output", [])):
            url = item.get("url")
            if not isinstance(url, str):
                raise BulkExportError("manifest output entry without a url")
            name = self._file_name(index, item)
            if done.get(url) == name and (self.download_dir / name).exists():
                self.stats.files_resumed += 1
                continue
            count = item.get("count")
            jobs.append((url, name, int(count) if isinstance(count, int) else None))
        def fetch_one(url: str, name: str, count: int | None) -> None:
            size = self._download(url, self.download_dir / name, count, requires_token)
            with self._lock:  # recorded as soon as it is on disk: a later failure does not lose it
                done[url] = name
                self.stats.files_downloaded += 1
                self.stats.bytes += size
            self._save_state()

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fhir-bulk") as pool, \
                progress(total=len(jobs), desc="Bulk download", unit="file") as bar:
            futures = [pool.submit(fetch_one, url, name, count) for url, name, count in jobs]
            for future in as_completed(futures):
                future.result()
                bar.update(1)
        return [self.download_dir / self._file_name(i, item) for i, item in enumerate(manifest.get("output", []))]

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
    def run(self, select_cohort: bool = True, vocabulary: Vocabulary | None = None) -> list[Path]:
        """Kick off (or resume), poll, download, narrow to the cohort, DELETE the job; return the files."""
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        self._load_state()
        manifest = self.state.get("manifest")
        status_url = self.state.get("status_url")
        if manifest is None:
            if status_url:
                log.info("resuming bulk export %s", status_url)
                manifest = self.poll(status_url)
                if manifest is None:
                    log.warning("bulk job %s is gone; starting a new export", status_url)
                    status_url = None
            if status_url is None:
                shutil.rmtree(self.download_dir, ignore_errors=True)
                status_url = self.kickoff()
                self.state = {"request": self._request_key(), "status_url": status_url, "done": {}}
                self._save_state()
                manifest = self.poll(status_url)
                if manifest is None:
                    raise BulkExportError(f"bulk job {status_url} disappeared before it finished")
            self.state["manifest"] = manifest
            self._save_state()
        downloads = self.download_all(manifest)
        for item in manifest.get("error", []) or []:
            log.warning("bulk export reported errors in %s", item.get("url"))
        paths = select_into(downloads, self.raw_dir, set(self.types), vocabulary, self.stats) if select_cohort else \
            _move_into(downloads, self.raw_dir)
        self.delete_job(status_url)
        shutil.rmtree(self.download_dir, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
        return paths


def _lines(paths: Sequence[Path], rtype: str | None = None) -> Iterator[dict]:
    for path in paths:
        if rtype is not None and not path.name.startswith(f"{rtype}."):
            continue
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield orjson.loads(line)
                    except orjson.JSONDecodeError:
                        raise BulkExportError(f"{path.name} line {number} is not JSON") from None


def select_into(downloads: Sequence[Path], raw_dir: Path, types: set[str],
                vocabulary: Vocabulary | None = None, stats: BulkStats | None = None) -> list[Path]:  # fmt: skip
    """Narrow exported files to the cohort (the search mode's rules, through the same ``vocabulary``), written
    as ``<Type>.ndjson``. A cohort patient whose Patient resource is not in the export is a problem in
    ``stats`` and marks it incomplete."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    cohort = {patient_of(r) for r in _lines(downloads, "Procedure") if is_index_procedure(r, vocabulary)}
    cohort.discard(None)
    writer = NdjsonWriter(raw_dir)
    try:
        for r in _lines(downloads):
            rtype = r.get("resourceType")
            if rtype not in types:
                continue
            if rtype == "Patient":
                if r.get("id") in cohort:
                    writer.add(r)
            elif keep(rtype, r, cohort, vocabulary):  # type: ignore[arg-type]
                writer.add(r)
        if "Patient" in types and stats is not None:
            for pid in sorted(cohort - writer.seen("Patient")):  # type: ignore[operator]
                stats.incomplete = True
                stats.problems.append(Problem(
                    "Patient", pid, "id",
                    "the export holds an index stenting Procedure of this patient but not the Patient: sex and "
                    "age are unknown, the patient is left out of the cohort", patient_id=pid,
                ))  # fmt: skip
        return writer.close(ensure_types=sorted(types))
    except BaseException:
        writer.abort()
        raise


def _move_into(downloads: Sequence[Path], raw_dir: Path) -> list[Path]:
    out = []
    for path in downloads:
        target = raw_dir / path.name
        os.replace(path, target)
        out.append(target)
    return out


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
) -> list[Path]:
    """Bulk-export ``types`` at ``level`` (``system`` | ``patient`` | ``group`` with ``group_id``) into
    ``raw_dir``; resumes an interrupted export found there. With ``select_cohort`` (default) only the cohort's
    relevant resources are kept (as in :func:`~.search.fetch_by_search`), else the files are kept as exported.
    ``vocabulary``: the run's codes (default: the contract's alone); ``type_filters`` default to
    :func:`type_filters_for` it."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    if type_filters is None:
        type_filters = type_filters_for(vocabulary)
    job = BulkExport(session, base_url, raw_dir, level, group_id, types, type_filters, since, workers, poll_cap)
    if stats is not None:
        job.stats = stats
    paths = job.run(select_cohort, vocabulary)
    job.stats.resources = {p.name.split(".")[0]: _count_lines(p) for p in paths}
    return paths


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)
