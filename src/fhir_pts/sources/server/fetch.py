"""The calls the CLI makes: fetch the cohort from the server a :class:`ServerConfig` describes into a raw dir
(:func:`fetch_to_raw`), and write the run's MeasureReports back (:func:`write_back_run`)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .bulk import BulkStats, fetch_by_bulk
from .config import ServerConfig, connect
from .http import ServerError
from .search import SearchStats, fetch_by_search

if TYPE_CHECKING:
    from fhir_pts.outputs.write_back import WriteBackSummary

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


def fetch_to_raw(config: ServerConfig, raw_dir: Path) -> list[Path]:
    """What ``fhir-pts run --server`` calls: fetch into ``raw_dir`` and return the files for the file pipeline."""
    result = fetch_from_server(config, raw_dir)
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


def write_back_run(config: ServerConfig, measure_reports: Path, *, echo: bool = True) -> WriteBackSummary:
    """What ``fhir-pts run --server ... --write-back`` calls: write the run's ``measure-reports.json`` (and the
    packaged Measures they refer to that the server lacks) in one transaction; print the summary to stderr."""
    try:
        bundle = json.loads(Path(measure_reports).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ServerError(f"cannot read the MeasureReports to write back ({measure_reports}): {e}") from None
    from fhir_pts.outputs.write_back import write_back  # outputs layer, imported only when writing back

    session, _ = connect(config, write=True)
    wanted = {
        str((e.get("resource") or {}).get("measure", "")).split("|")[0] for e in bundle.get("entry", []) or []
    }
    measures = [m for m in packaged_measures() if m.get("url") in wanted]
    summary = write_back(session, config.base_url, bundle, measures)
    if echo:
        print(summary.render(), file=sys.stderr)
    return summary
