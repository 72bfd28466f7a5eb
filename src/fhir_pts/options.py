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
from typing import TYPE_CHECKING, Any, NamedTuple

from fhir_pts.disclosure import MIN_CELL_COUNT, check_min_cell_count

if TYPE_CHECKING:
    from fhir_pts.pipeline import ServerConfig

__all__ = ["SERVER_OPTIONS", "add_min_cell_count_argument", "add_server_arguments", "server_config_from_args"]


class _RefuseSecret(argparse.Action):
    """``--token VALUE``: refused (a secret on the command line ends up in shell history and ``ps``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string}: a token is never taken from the command line; "
                     "set FHIR_PTS_TOKEN or use --token-file FILE")


class _ServerOption(NamedTuple):  # not a dataclass: `fhir-pts --help` imports no dataclasses
    """One hospital-server option: its spellings, the setting it overrides in :func:`server_config_from_args`
    (a :class:`ServerConfig` field, or ``token_file``, read into ``token``; None: not a setting), the commands it
    is for (``bulk``, ``write_back``: only those that fetch by Bulk export / write back; empty: every one) and
    the rest of its ``add_argument`` keywords (``dest`` first)."""

    flags: tuple[str, ...]
    setting: str | None
    arguments: Mapping[str, Any]
    only: str = ""


def _option(*flags: str, setting: str | None, only: str = "", **arguments: Any) -> _ServerOption:
    return _ServerOption(flags, setting, arguments, only)


#: The hospital-server options, in the order ``--help`` lists them.
SERVER_OPTIONS: tuple[_ServerOption, ...] = (
    _option("--server", setting="url", dest="server", metavar="URL",
            help="FHIR R4 base URL to fetch from (env FHIR_PTS_SERVER_URL)"),
    _option("--server-config", "--config", setting=None, dest="server_config", metavar="FILE", type=Path,
            help="TOML file with the server settings"),
    _option("--auth", setting="auth", dest="server_auth", choices=["none", "bearer", "smart"],
            help="how to authenticate (default: inferred)"),
    _option("--client-id", setting="client_id", dest="client_id",
            help="SMART Backend Services client id (env FHIR_PTS_CLIENT_ID)"),
    _option("--private-key", setting="private_key", dest="private_key", metavar="FILE", type=Path,
            help="SMART private key, PEM or JWKS file (env FHIR_PTS_PRIVATE_KEY)"),
    _option("--key-id", setting="key_id", dest="key_id", help="kid of the key to use from a JWKS file"),
    _option("--token-file", setting="token_file", dest="token_file", metavar="FILE", type=Path,
            help="file holding a bearer token (or env FHIR_PTS_TOKEN; never the token itself here)"),
    # defined only to refuse it (otherwise argparse would take --token as an abbreviation of --token-file)
    _option("--token", setting=None, dest="refused_token", action=_RefuseSecret, help=argparse.SUPPRESS),
    _option("--ca-bundle", setting="ca_bundle", dest="ca_bundle", metavar="FILE", type=Path,
            help="PEM file of CAs to trust for TLS"),
    _option("--bulk", setting="bulk", only="bulk", dest="bulk", action="store_true", default=None,
            help="fetch with Bulk Data $export instead of search"),
    _option("--export-level", setting="export_level", only="bulk", dest="export_level",
            choices=["system", "patient", "group"], help="$export level (default system)"),
    _option("--group-id", setting="group_id", only="bulk", dest="group_id", help="Group id for --export-level group"),
    _option("--no-type-filter", setting="type_filter", only="bulk", dest="type_filter", action="store_false",
            default=None,
            help="$export without _typeFilter (whole types; narrowed here): for servers whose _typeFilter is wrong"),
    _option("--page-size", setting="page_size", dest="page_size", type=int, metavar="N",
            help="_count per search page (default 1000)"),
    _option("--max-pages", setting="max_pages", dest="max_pages", type=int, metavar="N",
            help="most pages one search may take before it is stopped as endless (default 10000)"),
    _option("--server-workers", setting="workers", dest="server_workers", type=int, metavar="N",
            help="parallel requests to the server (default 4)"),
    _option("--write-back", setting="write_back", only="write_back", dest="write_back", action="store_true",
            default=None, help="write the MeasureReports back to the server (conditional create, never duplicates)"),
)  # fmt: skip


def add_server_arguments(parser: argparse.ArgumentParser, *, bulk: bool = False, write_back: bool = False) -> None:
    """Add the hospital-server options (``--server URL`` and its auth/fetch settings, :data:`SERVER_OPTIONS`)
    to a parser.

    ``bulk`` adds ``--bulk``/``--export-level``/``--group-id``/``--no-type-filter`` and ``write_back`` adds
    ``--write-back`` (only ``run`` writes back; ``run`` and ``validate`` fetch by Bulk export; ``serve``
    searches). Every option has its own ``dest``; an option string the parser already has (e.g. a ``--config``
    of its own) is left to the parser and only the other spellings are added.
    """
    group = parser.add_argument_group("hospital FHIR server (instead of INPUT files)")
    taken = set(parser._option_string_actions)
    wanted = {"": True, "bulk": bulk, "write_back": write_back}
    for option in SERVER_OPTIONS:
        free = [flag for flag in option.flags if flag not in taken]
        if free and wanted[option.only]:
            group.add_argument(*free, **option.arguments)


def server_config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServerConfig | None:
    """The :class:`~fhir_pts.sources.server.config.ServerConfig` the parsed arguments (plus environment and
    ``--config`` file) describe, or None when no server URL was given anywhere (``ConfigError`` if unusable)."""
    from fhir_pts.pipeline import load_server_config

    overrides = {o.setting: getattr(args, o.arguments["dest"], None) for o in SERVER_OPTIONS if o.setting}
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
