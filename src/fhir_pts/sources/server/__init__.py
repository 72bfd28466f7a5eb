"""The hospital-server source: fetch the cohort's facts from a FHIR R4 server into NDJSON files.

Layers: :mod:`.http` (retrying session, clear errors), :mod:`.auth` (none, bearer, SMART Backend Services),
:mod:`.discovery` (``/metadata``, SMART configuration), :mod:`.config` (``ServerConfig`` from TOML, environment
and CLI), :mod:`.search` (FHIR search, following ``next`` links) and :mod:`.bulk` (Bulk Data ``$export``).
What is fetched is written to a raw directory the file pipeline reads (``fhir-pts run RAW_DIR``), so a run can
be repeated offline and nothing the server filtered is trusted.
"""

from .bulk import BulkStats, fetch_by_bulk
from .config import ServerConfig, add_server_arguments, connect, load_server_config, server_config_from_args
from .fetch import FetchResult, ServerSource, fetch_from_server, fetch_to_raw, packaged_measures, write_back_run
from .http import AuthenticationError, AuthorizationError, RequestRefused, ServerError
from .search import SearchStats, fetch_by_search

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BulkStats",
    "FetchResult",
    "RequestRefused",
    "SearchStats",
    "ServerConfig",
    "ServerError",
    "ServerSource",
    "add_server_arguments",
    "connect",
    "fetch_by_bulk",
    "fetch_by_search",
    "fetch_from_server",
    "fetch_to_raw",
    "load_server_config",
    "packaged_measures",
    "server_config_from_args",
    "write_back_run",
]
