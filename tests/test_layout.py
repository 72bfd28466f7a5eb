"""The test suite's own layout, read with :mod:`ast` (as ``test_architecture.py`` reads the package's):

- no test module imports another (``test_*.py`` or ``conftest.py``): shared helpers live in factory modules (any
  other name) or fixtures in a ``conftest.py``, so a test file can be moved, renamed or run alone;
- ``tests/`` is a package and so is every folder of tests in it: helpers import as ``tests.<path>``, never through
  ``sys.path`` edits, and two test files may share a name in different folders;
- tests mirror the package layout: ``tests/<name>/`` is ``src/fhir_pts/<name>/`` (or ``<name>.py``), and a
  top-level ``tests/test_<name>.py`` tests ``fhir_pts.<name>``; the few folders that test something else say what.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PACKAGE = ROOT / "src" / "fhir_pts"
PLUGIN_TESTS = sorted((ROOT / "plugins").glob("*/tests"))

#: Folders of tests/ that mirror no package of src/fhir_pts, with what they hold.
NOT_MIRRORED = {
    "data": "input files of the engine and source tests",
    "doors": "every door (files, server search, Bulk export, host, serve, Spark) gives one answer: across packages",
    "profiles": "the FHIR package built from profiles/ (FSH) and shipped in src/fhir_pts/data/profiles",
    "plugins": "plugin distributions installed by tests/test_plugin_manager.py (data, not tests)",
}
#: Top-level test modules that test no module of the package, with what they test.
NOT_A_MODULE = {
    "test_architecture": "the import graph of src/fhir_pts",
    "test_layout": "this suite's layout",
}
#: Files that may edit ``sys.path``, with why.
SYS_PATH_EDITS = {
    "conftest.py": "the example plugin's install folder (.ci/plugin-site) for focused runs",
    "test_plugin_manager.py": "puts test plugin distributions on sys.path, as pip would install them",
}


def python_files() -> list[Path]:
    return sorted(p for root in (TESTS, *PLUGIN_TESTS) for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def is_test_module(name: str) -> bool:
    """``tests.outputs.test_report`` or ``.test_docs`` or ``conftest``: the last part names a test module."""
    last = name.rpartition(".")[2]
    return last.startswith("test_") or last == "conftest"


def imported_modules(path: Path) -> list[str]:
    """Every module an ``import`` / ``from ... import`` in ``path`` names (relative ones with their dots), with
    ``from package import name`` also as ``package.name`` (``name`` may be a module)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names.append(module)
            names += [f"{module}.{alias.name}" if node.module else module + alias.name for alias in node.names]
    return names


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in python_files()
        for name in imported_modules(path)
        if is_test_module(name)
    ]
    assert not offenders, "move what they share to a factory module or a conftest.py fixture:\n" + "\n".join(offenders)


def test_the_import_check_is_not_vacuous(tmp_path: Path) -> None:
    """Each way a test module can be imported is caught; helper modules and the standard library are not."""
    source = tmp_path / "test_x.py"
    source.write_text(
        "import os.path\nfrom . import test_docs, factories\nfrom .test_report import make_cohort\n"
        "from tests.sources.server.test_server_search import read_keys\nimport test_cli\nfrom conftest import x\n"
        "from tests.outputs.report_factory import make_outcomes\n"
    )
    flagged = [name for name in imported_modules(source) if is_test_module(name)]
    assert flagged == [
        ".test_docs",
        ".test_report",
        "tests.sources.server.test_server_search",
        "test_cli",
        "conftest",
    ]
    assert edits_sys_path(TESTS / "conftest.py") and edits_sys_path(TESTS / "test_plugin_manager.py")
    assert not edits_sys_path(Path(__file__))  # names the calls in strings only


def test_tests_is_a_package_of_packages() -> None:
    folders = {p.parent for p in TESTS.rglob("*.py") if p.name.startswith("test_") or p.name == "conftest.py"}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())
    assert not missing, f"add an __init__.py (tests import as tests.<path>): {missing}"


def edits_sys_path(path: Path) -> bool:
    """``sys.path.insert/append/extend(...)`` or ``monkeypatch.syspath_prepend(...)`` anywhere in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if node.func.attr == "syspath_prepend" or (
                node.func.attr in {"insert", "append", "extend"}
                and isinstance(target, ast.Attribute)
                and target.attr == "path"
                and isinstance(target.value, ast.Name)
                and target.value.id == "sys"
            ):
                return True
    return False


def test_no_sys_path_edits() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in python_files()
        if edits_sys_path(path) and not (path.name in SYS_PATH_EDITS and path.parent == TESTS)
    ]
    assert not offenders, f"import helpers as tests.<path> instead of editing sys.path: {offenders}"


def test_folders_mirror_the_package() -> None:
    unmirrored = []
    for folder in sorted({p.parent for p in TESTS.rglob("*.py")} - {TESTS}):  # folders of data files are not tests
        relative = folder.relative_to(TESTS)
        if relative.parts[0] in NOT_MIRRORED:
            continue
        twin = PACKAGE.joinpath(*relative.parts)
        if not (twin.is_dir() or twin.with_suffix(".py").is_file()):
            unmirrored.append(str(relative))
    assert not unmirrored, f"tests/<x>/ must mirror src/fhir_pts/<x> (or be listed in NOT_MIRRORED): {unmirrored}"
    stale = sorted(name for name in NOT_MIRRORED if not (TESTS / name).is_dir())
    assert not stale, f"no longer a folder of tests/, remove from NOT_MIRRORED: {stale}"


def test_top_level_test_modules_name_a_module() -> None:
    orphans = []
    for path in sorted(TESTS.glob("test_*.py")):
        name = path.stem.removeprefix("test_")
        if path.stem in NOT_A_MODULE:
            continue
        if not ((PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()):
            orphans.append(path.name)
    assert not orphans, f"move these under the folder of what they test (tests/<package>/): {orphans}"
