"""The hospital-server source: fetch the cohort's facts from a FHIR R4 server into NDJSON files.

Layers: :mod:`.http` (retrying session, clear errors), :mod:`.auth` (none, bearer, SMART Backend Services),
:mod:`.discovery` (``/metadata``, SMART configuration), :mod:`.config` (``ServerConfig`` from TOML, environment
and overrides), :mod:`.search` (FHIR search, following ``next`` links) and :mod:`.bulk` (Bulk Data ``$export``).
What is fetched is written to a raw directory the file pipeline reads (``fhir-pts run RAW_DIR``), so a run can
be repeated offline and nothing the server filtered is trusted.
"""

from typing import TYPE_CHECKING

from fhir_pts.lazy import lazy_getattr

if TYPE_CHECKING:
    from .bulk import BulkStats, fetch_by_bulk
    from .config import ServerConfig, connect, load_server_config
    from .fetch import FetchResult, ServerSource, fetch_from_server, fetch_to_raw, packaged_measures, write_back_run
    from .http import AuthenticationError, AuthorizationError, RequestRefused, ServerError
    from .search import SearchStats, fetch_by_search

#: Public name -> submodule. Submodules are imported on first use (PEP 562), so that building the CLI parser
#: (which needs none of them) does not import the Bulk, search and auth layers (requests, joserfc).
_SUBMODULE = {
    "BulkStats": "bulk",
    "fetch_by_bulk": "bulk",
    "ServerConfig": "config",
    "connect": "config",
    "load_server_config": "config",
    "FetchResult": "fetch",
    "ServerSource": "fetch",
    "fetch_from_server": "fetch",
    "fetch_to_raw": "fetch",
    "packaged_measures": "fetch",
    "write_back_run": "fetch",
    "AuthenticationError": "errors",
    "AuthorizationError": "errors",
    "RequestRefused": "errors",
    "ServerError": "errors",
    "SearchStats": "search",
    "fetch_by_search": "search",
}


__getattr__ = lazy_getattr(__name__, {name: f".{module}" for name, module in _SUBMODULE.items()})


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
    "connect",
    "fetch_by_bulk",
    "fetch_by_search",
    "fetch_from_server",
    "fetch_to_raw",
    "load_server_config",
    "packaged_measures",
    "write_back_run",
]
