"""The import graph of ``src/fhir_pts`` flows one way: no upward edge between layers, no cycle between packages.

Layers (a module may import its own layer and the layers listed as below it)::

    shared      codes, errors, problems, disclosure, vocabulary, instruments, hookspecs, atomic  (used everywhere)
    sources  -> adapters -> cohort -> analyses (and pooling) -> outputs
                engines     (orchestrate sources + adapters + cohort; know nothing of analyses or outputs)
    pipeline    pipeline, pool, validate, conformance, synth  (operations over every layer below)
    faces       cli, host, serve*, options, progress, __main__  (on top; progress is the terminal UI)

The faces go through the pipeline: besides ``fhir_pts.pipeline`` and each other they import only the few shared
modules of :data:`FACE_ALLOWED` (``docs/architecture.md``), never sources, adapters, engines, outputs,
``plugin_manager`` or the other operations directly (``pipeline`` re-exports what they need).

The graph is read with :mod:`ast`: module-level and function-level imports count, ``if TYPE_CHECKING:`` imports do
not (they are annotations, not run-time dependencies). Known violations are listed in :data:`ALLOWED_UPWARD`
with the reason; a new upward edge or package cycle fails the test, and so does an entry that is no longer needed.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fhir_pts"

SHARED = "shared"
LAYER_OF_PREFIX = {
    "fhir_pts": SHARED,
    "fhir_pts.codes": SHARED,
    "fhir_pts.errors": SHARED,
    "fhir_pts.lazy": SHARED,
    "fhir_pts.problems": SHARED,
    "fhir_pts.disclosure": SHARED,
    "fhir_pts.vocabulary": SHARED,
    "fhir_pts.instruments": SHARED,
    "fhir_pts.hookspecs": SHARED,
    "fhir_pts.plugin": "analyses",  # the plugin API re-exported (analyses.api, cohort.model, instruments)
    "fhir_pts.atomic": SHARED,
    "fhir_pts.sources": "sources",
    "fhir_pts.adapters": "adapters",
    "fhir_pts.cohort": "cohort",
    "fhir_pts.testing": "cohort",  # factories of patients frames and cohorts for tests (plugins' too)
    "fhir_pts.analyses": "analyses",
    "fhir_pts.plugin_manager": "analyses",
    "fhir_pts.pooling": "analyses",
    "fhir_pts.outputs": "outputs",
    "fhir_pts.engines": "engines",
    "fhir_pts.pipeline": "pipeline",
    "fhir_pts.validate": "pipeline",
    "fhir_pts.validation": "pipeline",
    "fhir_pts.conformance": "pipeline",
    "fhir_pts.synth": "pipeline",
    "fhir_pts.pool": "pipeline",
    "fhir_pts.cli": "faces",
    "fhir_pts.host": "faces",
    "fhir_pts.serve": "faces",
    "fhir_pts.serve_parameters": "faces",
    "fhir_pts.serve_pool": "faces",
    "fhir_pts.progress": "faces",
    "fhir_pts.options": "faces",
    "fhir_pts.__main__": "faces",
}

#: What a face (a module of the faces layer) may import besides ``fhir_pts.pipeline`` and the other faces, and why.
FACE_ALLOWED: dict[str, str] = {
    "fhir_pts": "__version__",
    "fhir_pts.codes": "code systems and canonical URLs (constants)",
    "fhir_pts.disclosure": "the minimum cell count: its default and its check",
    "fhir_pts.problems": "Problem, the type of HostResult.problem_list",
    "fhir_pts.cohort.model": "Cohort and TimePointWindows, the types a face takes and gives",
    "fhir_pts.analyses.api": "AnalysisInfo and AnalysisOutcome, the types a face gives",
}
_CHAIN = [SHARED, "sources", "adapters", "cohort", "analyses", "outputs"]
BELOW: dict[str, set[str]] = {layer: set(_CHAIN[:i]) for i, layer in enumerate(_CHAIN)}
BELOW["engines"] = {SHARED, "sources", "adapters", "cohort"}
BELOW["pipeline"] = set(_CHAIN) | {"engines"}
BELOW["faces"] = BELOW["pipeline"] | {"pipeline"}

# Known upward edges (importer, imported), each with why it is still there. Remove an entry when it is fixed.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


# Known package cycles (the packages of one cycle, sorted), each with why it is still there.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped.update(id(n) for n in ast.walk(child))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (at module level or inside functions)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                submodules = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in files]
                names_left = len(submodules) < len(node.names)
                targets = submodules + ([module] if names_left else [])
            else:
                continue
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def layer(module: str) -> str:
    best = max((p for p in LAYER_OF_PREFIX if module == p or module.startswith(p + ".")), key=len)
    return LAYER_OF_PREFIX[best]


def upward_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if layer(a) != layer(b) and layer(b) not in BELOW[layer(a)]
    }


def package_of(module: str) -> str:
    """``fhir_pts.sources.server.http`` -> ``fhir_pts.sources``; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def package_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (size > 1) of the package graph (Tarjan)."""
    packages: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        for b in targets:
            if package_of(a) != package_of(b):
                packages[package_of(a)].add(package_of(b))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(packages.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(set(packages) | {b for t in packages.values() for b in t}):
        if node not in index:
            visit(node)
    return components


def test_every_module_has_a_layer() -> None:
    """A new top-level module or sub-package must be placed in a layer (``fhir_pts`` alone places nothing)."""
    placed = {p.split(".")[1] for p in LAYER_OF_PREFIX if p != "fhir_pts"}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    unplaced = sorted(m for m in modules if m != "fhir_pts" and m.split(".")[1] not in placed)
    assert not unplaced, f"give these modules a layer in LAYER_OF_PREFIX: {unplaced}"


def test_no_upward_import() -> None:
    edges = upward_edges(import_graph())
    new = sorted(edges - set(ALLOWED_UPWARD))
    assert not new, "upward imports (a layer importing one above it):\n" + "\n".join(
        f"  {a} ({layer(a)}) -> {b} ({layer(b)})" for a, b in new
    )
    fixed = sorted(set(ALLOWED_UPWARD) - edges)
    assert not fixed, f"no longer needed in ALLOWED_UPWARD, remove: {fixed}"


def face_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports of a face that pass the pipeline by: a face importing anything but ``fhir_pts.pipeline``, another
    face or a module of :data:`FACE_ALLOWED`."""
    return {
        (a, b)
        for a, targets in graph.items()
        if layer(a) == "faces"
        for b in targets
        if layer(b) != "faces" and b != "fhir_pts.pipeline" and b not in FACE_ALLOWED
    }


def test_faces_go_through_the_pipeline() -> None:
    """cli, host, serve (and the ``pool`` command) reach sources, engines, outputs, plugins only via pipeline."""
    edges = face_edges(import_graph())
    assert not edges, "faces importing past fhir_pts.pipeline (add what they need to the pipeline):\n" + "\n".join(
        f"  {a} -> {b}" for a, b in sorted(edges)
    )


def test_the_face_rule_is_not_vacuous() -> None:
    graph = import_graph()
    assert "fhir_pts.pipeline" in graph["fhir_pts.cli.run"] and "fhir_pts.pipeline" in graph["fhir_pts.host"]
    for below in ("fhir_pts.sources.files", "fhir_pts.adapters.common", "fhir_pts.engines", "fhir_pts.outputs.staging",
                  "fhir_pts.plugin_manager", "fhir_pts.pool", "fhir_pts.vocabulary"):  # fmt: skip
        for face in ("fhir_pts.cli.run", "fhir_pts.host", "fhir_pts.serve.fhir", "fhir_pts.serve_parameters"):
            assert face_edges({face: {below, "fhir_pts.pipeline", "fhir_pts.options"}}) == {(face, below)}
    assert not face_edges({"fhir_pts.serve.command": {"fhir_pts.options", "fhir_pts.disclosure"}})
    # the pipeline package is the door, not its modules (they are re-exported by it)
    reading = "fhir_pts.pipeline.reading"
    assert face_edges({"fhir_pts.host": {reading}}) == {("fhir_pts.host", reading)}


def test_no_package_cycle() -> None:
    cycles = {tuple(c) for c in package_cycles(import_graph())}
    new = sorted(cycles - set(ALLOWED_CYCLES))
    assert not new, f"package cycles: {new}"
    fixed = sorted(set(ALLOWED_CYCLES) - cycles)
    assert not fixed, f"no longer a cycle, remove from ALLOWED_CYCLES: {fixed}"


def test_the_graph_sees_function_level_imports() -> None:
    """The check is not vacuous: function-level imports (the CLI's lazy ones) are edges of the graph."""
    graph = import_graph()
    assert "fhir_pts.pipeline" in graph["fhir_pts.cli"]
    assert "fhir_pts.sources.server.write_back" in graph["fhir_pts.sources.server.fetch"]
    assert upward_edges({"fhir_pts.sources.files": {"fhir_pts.outputs.tables"}}) == {
        ("fhir_pts.sources.files", "fhir_pts.outputs.tables")
    }
    assert package_cycles({"fhir_pts.sources.a": {"fhir_pts.outputs.b"}, "fhir_pts.outputs.b": {"fhir_pts.sources.c"}})


#: Former module names kept as thin re-exports for third-party plugins (old name -> home): nothing in the package
#: imports them, so they can go once plugins have moved.
COMPATIBILITY_ALIASES: dict[str, str] = {"fhir_pts.analyses.result": "fhir_pts.analyses.api"}


def test_no_module_imports_a_compatibility_alias() -> None:
    users = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        users += [
            f"{module_name(path)} imports {old} (use {COMPATIBILITY_ALIASES[old]})"
            for old in imported & set(COMPATIBILITY_ALIASES)
            if module_name(path) != old
        ]
    assert not users, "\n".join(sorted(users))
    for old, home in COMPATIBILITY_ALIASES.items():  # and each alias is a thin re-export of its home's objects
        alias, target = importlib.import_module(old), importlib.import_module(home)
        assert alias.__all__ and all(getattr(alias, n) is getattr(target, n) for n in alias.__all__), old
