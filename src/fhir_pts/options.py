"""Command-line option groups shared by ``fhir-pts`` (:mod:`fhir_pts.cli`) and ``fhir-pts serve`` /
``python -m fhir_pts.serve`` (:mod:`fhir_pts.serve`), and what they turn into.

The hospital-server options (``--server URL`` and its auth / fetch settings) become a
:class:`~fhir_pts.sources.server.config.ServerConfig` through :func:`server_config_from_args` (command line >
environment > ``--config`` TOML file, by the source's own ``load_server_config``, reached through
:mod:`fhir_pts.pipeline`); ``--min-cell-count`` is checked by :func:`fhir_pts.disclosure.check_min_cell_count`.
The options live here, in the faces layer (beside both commands, so that neither package imports the other):
the source layer knows no argparse.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_pts.disclosure import MIN_CELL_COUNT, check_min_cell_count

if TYPE_CHECKING:
    from fhir_pts.pipeline import ServerConfig

__all__ = ["add_min_cell_count_argument", "add_server_arguments", "server_config_from_args"]


class _RefuseSecret(argparse.Action):
    """``--token VALUE``: refused (a secret on the command line ends up in shell history and ``ps``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string}: a token is never taken from the command line; "
                     "set FHIR_PTS_TOKEN or use --token-file FILE")


def add_server_arguments(parser: argparse.ArgumentParser, *, bulk: bool = False, write_back: bool = False) -> None:
    """Add the hospital-server options (``--server URL`` and its auth/fetch settings) to a parser.

    ``bulk`` adds ``--bulk``/``--export-level``/``--group-id`` and ``write_back`` adds ``--write-back`` (only
    ``run`` fetches by Bulk export and writes back; ``validate`` and ``serve`` search). Every option has its own
    ``dest``; an option string the parser already has (e.g. a ``--config`` of its own)
    is left to the parser and only the other spellings are added.
    """
    g = parser.add_argument_group("hospital FHIR server (instead of INPUT files)")
    taken = set(parser._option_string_actions)

    def add(*flags: str, **kw: Any) -> None:
        free = [f for f in flags if f not in taken]
        if free:
            g.add_argument(*free, **kw)

    add("--server", dest="server", metavar="URL", help="FHIR R4 base URL to fetch from (env FHIR_PTS_SERVER_URL)")
    add("--server-config", "--config", dest="server_config", metavar="FILE", type=Path,
        help="TOML file with the server settings")
    add("--auth", dest="server_auth", choices=["none", "bearer", "smart"],
        help="how to authenticate (default: inferred)")
    add("--client-id", dest="client_id", help="SMART Backend Services client id (env FHIR_PTS_CLIENT_ID)")
    add("--private-key", dest="private_key", metavar="FILE", type=Path,
        help="SMART private key, PEM or JWKS file (env FHIR_PTS_PRIVATE_KEY)")
    add("--key-id", dest="key_id", help="kid of the key to use from a JWKS file")
    add("--token-file", dest="token_file", metavar="FILE", type=Path,
        help="file holding a bearer token (or env FHIR_PTS_TOKEN; never the token itself here)")
    # defined only to refuse it (otherwise argparse would take --token as an abbreviation of --token-file)
    add("--token", dest="refused_token", action=_RefuseSecret, help=argparse.SUPPRESS)
    add("--ca-bundle", dest="ca_bundle", metavar="FILE", type=Path, help="PEM file of CAs to trust for TLS")
    if bulk:
        add("--bulk", dest="bulk", action="store_true", default=None,
            help="fetch with Bulk Data $export instead of search")
        add("--export-level", dest="export_level", choices=["system", "patient", "group"],
            help="$export level (default system)")
        add("--group-id", dest="group_id", help="Group id for --export-level group")
        add("--no-type-filter", dest="type_filter", action="store_false", default=None,
            help="$export without _typeFilter (whole types; narrowed here): for servers whose _typeFilter is wrong")
    add("--page-size", dest="page_size", type=int, metavar="N", help="_count per search page (default 1000)")
    add("--max-pages", dest="max_pages", type=int, metavar="N",
        help="most pages one search may take before it is stopped as endless (default 10000)")
    add("--server-workers", dest="server_workers", type=int, metavar="N",
        help="parallel requests to the server (default 4)")
    if write_back:
        add("--write-back", dest="write_back", action="store_true", default=None,
            help="write the MeasureReports back to the server (conditional create, never duplicates)")


def server_config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServerConfig | None:
    """The :class:`~fhir_pts.sources.server.config.ServerConfig` the parsed arguments (plus environment and
    ``--config`` file) describe, or None when no server URL was given anywhere (``ConfigError`` if unusable)."""
    from fhir_pts.pipeline import load_server_config

    overrides = {
        "url": getattr(args, "server", None),
        "auth": getattr(args, "server_auth", None),
        "client_id": getattr(args, "client_id", None),
        "private_key": getattr(args, "private_key", None),
        "key_id": getattr(args, "key_id", None),
        "token_file": getattr(args, "token_file", None),
        "ca_bundle": getattr(args, "ca_bundle", None),
        "bulk": getattr(args, "bulk", None),
        "export_level": getattr(args, "export_level", None),
        "group_id": getattr(args, "group_id", None),
        "type_filter": getattr(args, "type_filter", None),
        "page_size": getattr(args, "page_size", None),
        "max_pages": getattr(args, "max_pages", None),
        "workers": getattr(args, "server_workers", None),
        "write_back": getattr(args, "write_back", None),
    }
    return load_server_config(getattr(args, "server_config", None), environ, overrides)


def add_min_cell_count_argument(parser: argparse.ArgumentParser) -> None:
    """``--min-cell-count N`` (default :data:`~fhir_pts.disclosure.MIN_CELL_COUNT`), the same option for ``run``
    and ``serve``."""

    def parse(text: str) -> int:
        try:
            return check_min_cell_count(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(
        "--min-cell-count",
        type=parse,
        default=MIN_CELL_COUNT,
        metavar="N",
        help=f"smallest number of patients shown in a count (default {MIN_CELL_COUNT}, as Cumulus); counts "
        "1..N-1 are suppressed and marked 'masked', and so is every figure computed from them; 0 (or 1) turns it off",
    )
