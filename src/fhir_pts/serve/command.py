"""The command line of ``fhir-pts serve`` (and ``python -m fhir_pts.serve``): options, the token, the run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from fhir_pts.disclosure import MIN_CELL_COUNT
from fhir_pts.options import add_min_cell_count_argument, add_server_arguments, server_config_from_args
from fhir_pts.serve.fhir import TOKEN_ENV, ServeConfig, ServeConfigError, build_server

log = logging.getLogger("fhir_pts.serve")


# ------------------------------------------------------------------------------------------ command line


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fhir-pts serve`` (INPUT... or the server options, --host, --port, --token-file)."""
    parser.add_argument(
        "inputs", nargs="*", type=Path, metavar="INPUT", help="FHIR Bundle JSON / NDJSON files or folders to serve"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080; 0: any free port)")
    parser.add_argument(
        "--token-file",
        dest="serve_token_file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"file holding the access token clients of this server send as 'Authorization: Bearer' (or set "
        f"{TOKEN_ENV}); a hospital server's own bearer token comes from FHIR_PTS_TOKEN(_FILE) or --config",
    )
    parser.add_argument(
        "--concept-map", action="append", default=[], metavar="FILE|CANONICAL",
        help="FHIR ConceptMap: a file, or a canonical URL read from the --server (repeatable)"
    )
    parser.add_argument("--base-path", default="/fhir", help="FHIR base path (default /fhir)")
    add_min_cell_count_argument(parser)
    add_server_arguments(parser)


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    path = args.serve_token_file
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServeConfigError(f"token file {path} cannot be read ({exc.strerror or exc})") from exc
        if not token:
            raise ServeConfigError(f"token file {path} is empty")
        from fhir_pts.pipeline import warn_if_exposed

        warn_if_exposed(path, "token file")
        return token
    return environ.get(TOKEN_ENV) or None


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """The :class:`ServeConfig` of parsed ``fhir-pts serve`` arguments (token from file or environment)."""
    environ = os.environ if environ is None else environ
    try:
        server = server_config_from_args(args, environ)
    except Exception as exc:
        raise ServeConfigError(str(exc)) from exc
    config = ServeConfig(
        files=tuple(args.inputs),
        server=server,
        host=args.host,
        port=args.port,
        token=_token(args, environ),
        base_path=args.base_path,
        concept_maps=tuple(args.concept_map),
        min_cell_count=getattr(args, "min_cell_count", MIN_CELL_COUNT),
    )
    config.check()
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    """``fhir-pts serve``: serve until interrupted. Returns 0, or 2 for an unusable configuration or input."""
    from fhir_pts.host import HostInputError

    try:
        server = build_server(config_from_args(args))
    except (ServeConfigError, HostInputError, OSError) as exc:
        print(f"fhir-pts serve: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"fhir-pts serve: {len(server.cohort)} patients, {len(server.analyses)} measures at {server.base_url}"
        + (" (access token required)" if server.config.token else ""),
        file=sys.stderr,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("fhir-pts serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def serve_main(argv: Sequence[str] | None = None) -> int:
    """``python -m fhir_pts.serve [options]``: the same as ``fhir-pts serve``."""
    parser = argparse.ArgumentParser(prog="fhir-pts serve", description="Serve the analyses as a FHIR R4 server.")
    add_serve_arguments(parser)
    return cmd_serve(parser.parse_args(argv))
