"""Search mode against the real sekmet-fhir: exactly the cohort's relevant resources, paging followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_pts.sources.server.http import FhirSession
from fhir_pts.sources.server.search import PATIENT_TYPES, SearchStats, fetch_by_search
from tests.sources.server.cohort_factory import expected_keys, read_keys
from tests.sources.server.sekmet_harness import ServerInfo

pytestmark = pytest.mark.server


def test_search_fetches_exactly_the_cohort(sekmet: ServerInfo, cohort: list[dict], reader: FhirSession,
                                           tmp_path: Path) -> None:
    stats = SearchStats()
    paths = fetch_by_search(reader, sekmet.base_url, tmp_path, stats=stats)
    assert read_keys(paths) == expected_keys(cohort)
    assert stats.patients == 12
    assert not list(tmp_path.glob(".*.tmp"))
    # one page per (type, batch) plus the index search: requests do not grow with patients x types
    assert stats.requests == stats.pages == 1 + len(PATIENT_TYPES)
    assert stats.fallbacks == 0 and not stats.outcomes
    assert not stats.dropped_parameters and not stats.problems and not stats.incomplete  # strict server: all honoured


def test_search_follows_next_links(sekmet: ServerInfo, cohort: list[dict], reader: FhirSession,
                                   tmp_path: Path) -> None:
    stats = SearchStats()
    paths = fetch_by_search(reader, sekmet.base_url, tmp_path, page_size=3, patients_per_request=5, workers=3,
                            stats=stats)
    assert read_keys(paths) == expected_keys(cohort)
    assert stats.pages > 1 + len(PATIENT_TYPES) * 3  # many pages per search
    assert stats.requests == stats.pages


def test_search_twice_into_same_dir_replaces_files(sekmet: ServerInfo, cohort: list[dict], reader: FhirSession,
                                                    tmp_path: Path) -> None:
    first = fetch_by_search(reader, sekmet.base_url, tmp_path)
    second = fetch_by_search(reader, sekmet.base_url, tmp_path, workers=1)
    assert first == second
    assert read_keys(second) == expected_keys(cohort)
