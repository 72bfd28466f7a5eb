"""The calls the CLI makes: connect to the server a :class:`ServerConfig` describes (:class:`ServerSource`),
build the run's vocabulary with its ConceptMaps, fetch the cohort into a raw dir, and write the run's
MeasureReports back (:func:`write_back_run`)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts.problems import Problem
from fhir_pts.vocabulary import Vocabulary

from .bulk import BulkStats, fetch_by_bulk
from .concept_maps import fetch_concept_map
from .config import ServerConfig, connect
from .discovery import ServerCapabilities
from .http import FhirSession, ServerError
from .plan import FetchPlan, gap_problem, gap_text, plan_fetch
from .search import ProgressCallback, SearchStats, fetch_by_search, no_progress

if TYPE_CHECKING:
    from .write_back import WriteBackSummary

log = logging.getLogger(__name__)


@dataclass
class FetchResult:
    """The files written and what it took.

    ``problems`` are problems.csv rows of the fetch itself (contract inputs the server cannot provide, issues
    of the export's error files, deleted resources); ``gaps`` say in one sentence each which contract inputs
    are missing: when there are any, the results are incomplete (report, MeasureReports, exit status 3).
    """

    paths: list[Path]
    mode: str  # "search" | "bulk"
    requests: int
    stats: SearchStats | BulkStats
    #: Records the server could not give (a cohort Patient missing, an ignored parameter, ...): problems.csv rows.
    problems: list[Problem]
    #: Some cohort patient's data could not be fetched completely (the CLI exits non-zero).
    incomplete: bool = False
    #: Contract inputs the server could not provide, one sentence each (report, MeasureReports).
    gaps: list[str] = field(default_factory=list)
    #: What was asked for, from the CapabilityStatement.
    plan: FetchPlan | None = None


@dataclass
class ServerSource:
    """One connection to one server for one run: discovery and authentication once, then the vocabulary's
    server-hosted ConceptMaps and the fetch share it."""

    config: ServerConfig
    session: FhirSession
    capabilities: ServerCapabilities

    @classmethod
    def open(cls, config: ServerConfig) -> ServerSource:
        """Discover the server (R4 checked) and authenticate."""
        session, caps = connect(config, write=False)
        return cls(config, session, caps)

    def vocabulary(self, concept_maps: Sequence[Path | str]) -> Vocabulary:
        """The run's vocabulary: ConceptMap files, and canonicals (``https://…/ConceptMap/x[|version]``) read
        from this server."""
        return Vocabulary.build(concept_maps, lambda ref: fetch_concept_map(self.session, self.config.base_url, ref))

    def fetch(
        self, raw_dir: Path, vocabulary: Vocabulary | None = None, progress: ProgressCallback = no_progress
    ) -> FetchResult:
        """Fetch the cohort by search or Bulk Data (``config.bulk``) into ``raw_dir`` as ``<Type>.ndjson`` files
        that ``fhir-pts run raw_dir`` reads, asking for every code of ``vocabulary``; ``progress`` is told of each
        search done or file downloaded."""
        config, session = self.config, self.session
        vocabulary = vocabulary if vocabulary is not None else Vocabulary()
        plan = plan_fetch(self.capabilities, bulk=config.bulk, level=config.export_level,
                          type_filter=config.type_filter, session=session)
        plan.log()
        problems = [gap_problem(t, why) for t, why in plan.unavailable.items()]
        gaps = [gap_text(t, why) for t, why in plan.unavailable.items()]
        stats: SearchStats | BulkStats
        if config.bulk:
            stats = BulkStats()
            paths = fetch_by_bulk(session, config.base_url, raw_dir, config.export_level, config.group_id,
                                  types=plan.types, type_filters=None if plan.type_filter else (),
                                  workers=config.workers, stats=stats, vocabulary=vocabulary, progress=progress)
            gaps += stats.gaps
            mode = "bulk"
        else:
            stats = SearchStats()
            paths = fetch_by_search(session, config.base_url, raw_dir, page_size=config.page_size,
                                    max_pages=config.max_pages, patients_per_request=config.patients_per_request,
                                    workers=config.workers,
                                    stats=stats, vocabulary=vocabulary, types=plan.types, progress=progress)
            mode = "search"
        problems += stats.problems
        if stats.incomplete and not gaps:
            gaps.append("some cohort patients' data could not be fetched completely (see problems.csv)")
        log.info("fetched from %s (%s, FHIR %s) by %s: %d requests (%d transient answers retried)",
                 config.base_url, self.capabilities.software, self.capabilities.fhir_version, mode,
                 session.requests_made, getattr(session, "retried", 0))
        for gap in gaps:
            log.warning("incomplete data: %s", gap)
        return FetchResult(paths, mode, session.requests_made, stats, problems, bool(gaps) or stats.incomplete,
                           gaps, plan)


def fetch_from_server(config: ServerConfig, raw_dir: Path, vocabulary: Vocabulary | None = None) -> FetchResult:
    """Connect and fetch the cohort into ``raw_dir`` (see :meth:`ServerSource.fetch`)."""
    return ServerSource.open(config).fetch(raw_dir, vocabulary)


def fetch_to_raw(config: ServerConfig, raw_dir: Path, vocabulary: Vocabulary | None = None) -> list[Path]:
    """Fetch into ``raw_dir`` and return the files for the file pipeline (problems: see :func:`fetch_from_server`)."""
    result = fetch_from_server(config, raw_dir, vocabulary)
    log.info("%d files in %s (%s mode, %d requests)", len(result.paths), raw_dir, result.mode, result.requests)
    return result.paths


def packaged_measures() -> list[dict]:
    """The project's Measure resources shipped in ``fhir_pts/data/profiles`` (empty if none are packaged)."""
    from importlib import resources

    folder = resources.files("fhir_pts").joinpath("data", "profiles")
    out = []
    if folder.is_dir():
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.startswith("Measure-") and item.name.endswith(".json"):
                out.append(json.loads(item.read_text(encoding="utf-8")))
    return out


def write_back_run(
    config: ServerConfig,
    measure_reports: Mapping[str, Any] | Path,
    *,
    echo: bool = True,
    extra_measures: Sequence[Mapping[str, Any]] = (),
) -> WriteBackSummary:
    """What ``fhir-pts run --server ... --write-back`` calls: write the run's MeasureReports — the Bundle the run
    wrote to ``measure-reports.json``, as the run holds it in memory (or that file's path) — and the packaged
    Measures they refer to that the server lacks (``extra_measures``: those the plugins' instruments ship) in
    one transaction; print the summary to stderr."""
    if isinstance(measure_reports, Mapping):
        bundle = dict(measure_reports)
    else:
        try:
            bundle = json.loads(Path(measure_reports).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ServerError(f"cannot read the MeasureReports to write back ({measure_reports}): {e}") from None
    from .write_back import write_back

    session, _ = connect(config, write=True)
    wanted = {
        str((e.get("resource") or {}).get("measure", "")).split("|")[0] for e in bundle.get("entry", []) or []
    }
    measures = [dict(m) for m in (*packaged_measures(), *extra_measures) if m.get("url") in wanted]
    summary = write_back(session, config.base_url, bundle, measures)
    if echo:
        print(summary.render(), file=sys.stderr)
    return summary
