"""Start sekmet-fhir for the fhir-pts tests (run with the server venv's python, not the project's).

sekmet-fhir 0.1.1 has no search parameters for QuestionnaireResponse, AdverseEvent, MeasureReport, Measure,
Questionnaire and ConceptMap, and silently drops unknown parameters. This launcher adds the standard R4 definitions to
``sekmet.fhir.search_params.PARAMS`` (mutated in place, before any resource is indexed), then serves the app
with uvicorn on loopback.

    python launch.py --port 8123 --data-dir /tmp/x \
        --smart-client full=/tmp/keys/full.pub.pem='system/*.read system/*.write' \
        --smart-client reader=/tmp/keys/reader.pub.pem='system/*.read'
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Standard R4 search parameters missing from sekmet's table: type -> [(name, kind, paths, target)].
EXTRA_PARAMS: dict[str, list[tuple[str, str, tuple[str, ...], str | None]]] = {
    "QuestionnaireResponse": [
        ("identifier", "token", ("identifier",), None),
        ("subject", "reference", ("subject",), None),
        ("patient", "reference", ("subject",), "Patient"),
        # R4 declares it a reference, but the element is a canonical string, which sekmet's reference
        # indexer skips; indexed as a uri it can at least be matched exactly.
        ("questionnaire", "uri", ("questionnaire",), None),
        ("authored", "date", ("authored",), None),
        ("status", "token", ("status",), None),
        ("encounter", "reference", ("encounter",), None),
        ("author", "reference", ("author",), None),
    ],
    "AdverseEvent": [
        ("identifier", "token", ("identifier",), None),
        ("subject", "reference", ("subject",), None),
        ("patient", "reference", ("subject",), "Patient"),
        ("date", "date", ("date",), None),
        ("seriousness", "token", ("seriousness",), None),
        ("actuality", "token", ("actuality",), None),
        ("event", "token", ("event",), None),
        ("substance", "reference", ("suspectEntity.instance",), None),
    ],
    "MeasureReport": [
        ("identifier", "token", ("identifier",), None),
        ("measure", "uri", ("measure",), None),
        ("subject", "reference", ("subject",), None),
        ("patient", "reference", ("subject",), "Patient"),
        ("period", "date", ("period",), None),
        ("status", "token", ("status",), None),
        ("date", "date", ("date",), None),
    ],
    "Measure": [
        ("url", "uri", ("url",), None),
        ("version", "token", ("version",), None),
        ("identifier", "token", ("identifier",), None),
        ("name", "string", ("name",), None),
        ("status", "token", ("status",), None),
    ],
    "ConceptMap": [  # --concept-map CANONICAL reads ConceptMap?url=&version=
        ("url", "uri", ("url",), None),
        ("version", "token", ("version",), None),
        ("identifier", "token", ("identifier",), None),
        ("name", "string", ("name",), None),
        ("status", "token", ("status",), None),
    ],
    "Questionnaire": [
        ("url", "uri", ("url",), None),
        ("version", "token", ("version",), None),
        ("identifier", "token", ("identifier",), None),
        ("name", "string", ("name",), None),
        ("status", "token", ("status",), None),
    ],
}


def patch_search_params() -> list[str]:
    """Add :data:`EXTRA_PARAMS` to sekmet's table in place; return ``Type.param`` names added."""
    from sekmet.fhir import search_params as sp

    added = []
    for rtype, defs in EXTRA_PARAMS.items():
        table = sp.PARAMS.setdefault(rtype, {})
        for name, kind, paths, target in defs:
            if name not in table:
                table[name] = sp.SearchParam(name, kind, paths, target)
                added.append(f"{rtype}.{name}")
    return added


def build_settings(args: argparse.Namespace) -> dict:
    """The template settings with this run's address, data dir and SMART clients filled in."""
    import yaml

    data = yaml.safe_load(Path(args.template).read_text()) or {}
    data.update(base_url=f"http://127.0.0.1:{args.port}/fhir", host="127.0.0.1", port=args.port,
                data_dir=str(args.data_dir))
    if args.validation:
        data.setdefault("validation", {})["inbound"] = args.validation
    clients = []
    for spec in args.smart_client:
        client_id, _, rest = spec.partition("=")
        key_path, _, scopes = rest.partition("=")
        if not client_id or not key_path or not scopes:
            raise SystemExit(f"--smart-client wants ID=PUBLIC_KEY_PATH=SCOPES, got {spec!r}")
        clients.append({"client_id": client_id, "public_key_path": key_path, "scopes": scopes})
    data.setdefault("server_auth", {})["smart_clients"] = clients
    if not clients:
        raise SystemExit("at least one --smart-client is required (the server never runs without auth here)")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--template", default=str(HERE / "settings.template.yaml"))
    parser.add_argument("--smart-client", action="append", default=[], metavar="ID=PUBKEY=SCOPES")
    parser.add_argument("--validation", choices=["strict", "warn", "off"], default=None)
    args = parser.parse_args(argv)

    added = patch_search_params()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    from sekmet.config import Settings, set_settings
    from sekmet.main import create_app

    settings = Settings.model_validate(build_settings(args))
    set_settings(settings)
    os.chdir(args.data_dir)  # sekmet writes a few relative paths (keys/); keep them inside the data dir
    app = create_app(settings)
    import uvicorn

    print(f"sekmet-fhir on {settings.base_url} (+{len(added)} search params)", file=sys.stderr, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
