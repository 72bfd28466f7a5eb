"""A hospital FHIR server: connect (:func:`open_server`), fetch the cohort into an owner-only folder
(:func:`fetch_raw`), write a run's MeasureReports back (:func:`write_back`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fhir_pts.sources.server.config import ServerConfig
    from fhir_pts.sources.server.fetch import FetchResult, ServerSource
    from fhir_pts.sources.server.write_back import WriteBackSummary
    from fhir_pts.vocabulary import Vocabulary


def open_server(config: ServerConfig) -> ServerSource:
    """Connect to the server ``config`` describes (discovery, R4 checked, authentication): the one connection
    a run's vocabulary (:meth:`ServerSource.vocabulary`) and fetch share."""
    from fhir_pts.sources.server.fetch import ServerSource

    return ServerSource.open(config)


def fetch_raw(
    source: ServerSource, folder: Path, vocabulary: Vocabulary, progress: Any = None
) -> FetchResult:
    """Fetch the cohort from ``source`` into ``folder`` (created owner-only: it holds PHI; its files are made
    owner-only too) as NDJSON files :func:`load_cohort` reads. ``progress``: told of each search / download."""
    from fhir_pts.sources.private_files import make_private_dir, protect_tree

    raw_dir = make_private_dir(folder)
    fetched = source.fetch(raw_dir, vocabulary) if progress is None else source.fetch(raw_dir, vocabulary, progress)
    protect_tree(raw_dir)
    return fetched


def write_back(
    config: ServerConfig,
    bundle: Mapping[str, Any],
    *,
    extra_measures: Sequence[Mapping[str, Any]] = (),
    echo: bool = True,
) -> WriteBackSummary:
    """Write a run's MeasureReports (the Bundle :func:`write_run` wrote, :attr:`RunFiles.bundle`) back to the
    server, with the Measures they refer to that the server lacks (``extra_measures``: those the plugins'
    instruments ship); ``echo`` prints the summary to stderr."""
    from fhir_pts.sources.server.fetch import write_back_run

    return write_back_run(config, bundle, echo=echo, extra_measures=extra_measures)
