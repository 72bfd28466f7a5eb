"""The committed FHIR package equals a fresh SUSHI build of profiles/, byte for byte.

Needs the pinned SUSHI (``npm ci --prefix profiles``, which scripts/test.sh runs when npm is there) and node;
skipped, saying why, otherwise. The build is offline: profiles/build.py feeds SUSHI the FHIR R4 core
definitions from the pinned npm package instead of the FHIR package registry.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"
PACKAGE = REPO / "src" / "fhir_pts" / "data" / "profiles"


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("profiles_build", PROFILES / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sushi_missing() -> str | None:
    if not (PROFILES / "build.py").exists():
        return "profiles/build.py is not in this checkout (installed package?)"
    if shutil.which("node") is None:
        return "node is not installed: SUSHI cannot run"
    if not (PROFILES / "node_modules" / ".bin" / "sushi").exists():
        return "SUSHI is not installed: run `npm ci --prefix profiles`"
    return None


@pytest.mark.slow
def test_committed_package_equals_a_fresh_sushi_build(tmp_path: Path) -> None:
    reason = _sushi_missing()
    if reason:
        pytest.skip(reason)
    run = subprocess.run(
        [sys.executable, str(PROFILES / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 Errors" in run.stdout
    built = {p.name: p.read_bytes() for p in (tmp_path / "fsh-generated" / "resources").glob("*.json")}
    committed = {p.name: p.read_bytes() for p in PACKAGE.glob("*.json") if p.name != "package.json"}
    assert sorted(built) == sorted(committed), "resources added or removed: run profiles/build.py --install"
    changed = [name for name in built if built[name] != committed[name]]
    assert not changed, f"stale committed resources {changed}: run `python3 profiles/build.py --install`"


def test_package_manifest_is_derived_from_sushi_config() -> None:
    if not (PROFILES / "build.py").exists():
        pytest.skip("profiles/build.py is not in this checkout")
    manifest = _build_module().package_manifest()
    committed = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    assert committed == manifest
    assert committed["version"] == "0.1.0" and committed["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}


def test_sushi_is_pinned_exactly() -> None:
    if not (PROFILES / "package.json").exists():
        pytest.skip("profiles/ is not in this checkout")
    declared = json.loads((PROFILES / "package.json").read_text(encoding="utf-8"))["devDependencies"]
    lock = json.loads((PROFILES / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    for name, version in declared.items():
        assert version[0].isdigit(), f"{name} must be pinned to an exact version, not {version!r}"
        assert lock[f"node_modules/{name}"]["version"] == version
