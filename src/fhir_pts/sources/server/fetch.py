"""One call for the CLI: fetch the cohort from the server a :class:`ServerConfig` describes into a raw dir."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .bulk import BulkStats, fetch_by_bulk
from .config import ServerConfig, connect
from .search import SearchStats, fetch_by_search

log = logging.getLogger(__name__)


@dataclass
class FetchResult:
    """The files written and what it took."""

    paths: list[Path]
    mode: str  # "search" | "bulk"
    requests: int
    stats: SearchStats | BulkStats


def fetch_from_server(config: ServerConfig, raw_dir: Path) -> FetchResult:
    """Discover the server (R4 checked), authenticate, and fetch the cohort by search or Bulk Data
    (``config.bulk``) into ``raw_dir`` as ``<Type>.ndjson`` files that ``fhir-pts run raw_dir`` reads."""
    session, caps = connect(config, write=False)
    stats: SearchStats | BulkStats
    if config.bulk:
        stats = BulkStats()
        paths = fetch_by_bulk(session, config.base_url, raw_dir, config.export_level, config.group_id,
                              workers=config.workers, stats=stats)
        mode = "bulk"
    else:
        stats = SearchStats()
        paths = fetch_by_search(session, config.base_url, raw_dir, page_size=config.page_size,
                                patients_per_request=config.patients_per_request, workers=config.workers,
                                stats=stats)
        mode = "search"
    log.info("fetched from %s (%s, FHIR %s) by %s: %d requests", config.base_url, caps.software,
             caps.fhir_version, mode, session.requests_made)
    return FetchResult(paths, mode, session.requests_made, stats)
