"""The package's shape (docs/architecture.md): no import cycles, layers import downwards only, small modules.

Imports anywhere in a file count, including inside functions, and importing ``a.b.c`` counts as importing the
packages ``a.b`` and ``a`` too (Python runs their ``__init__`` first), so a cycle through a package's
``__init__`` is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workshop_utils"
MAX_MODULE_LINES = 360
# Layers, bottom first: a module may import its own layer and the layers below, never above.
LAYERS: dict[str, int] = {"core": 0, "exercises": 0, "lessons": 1, "domain": 2, "serving": 3, "instructor": 4,
                          "entry": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("workshop_utils", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return LAYERS["entry"]  # the package's own __init__ (the wu namespace) and the command line sit on top
    return LAYERS.get(parts[1], LAYERS["domain"])


def imports_of(path: Path) -> set[str]:
    """The workshop_utils modules ``path`` imports, anywhere in the file, with the packages above each."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            if parts[0] == "workshop_utils":
                found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: {dep for dep in imports_of(path) if dep in modules and dep != name} for name, path in modules.items()}
    for name in modules:  # a module's package runs first; the edge to a parent package is implied, not a choice
        graph[name] -= {parent for parent in modules if name.startswith(parent + ".")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(graph[node]):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    return cycles


def test_there_are_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_graph_sees_imports_inside_functions_and_packages(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from workshop_utils.serving.launch import serve_models\n")
    assert imports_of(source) == {"workshop_utils.serving", "workshop_utils.serving.launch",
                                  "workshop_utils.serving.launch.serve_models"}


def test_layers_import_downwards_only() -> None:
    upward = sorted(f"{name} -> {dep}" for name, deps in import_graph().items() for dep in deps
                    if layer_of(dep) > layer_of(name))
    assert not upward, "a lower layer imports a higher one (see docs/architecture.md): " + "; ".join(upward)


@pytest.mark.parametrize("module,layer", [("workshop_utils.core.data", "core"), ("workshop_utils.nuclei.model", "domain"),
                                          ("workshop_utils.serving.worker", "serving"),
                                          ("workshop_utils.instructor.runner", "instructor"), ("workshop_utils", "entry")])
def test_layer_of(module: str, layer: str) -> None:
    assert layer_of(module) == LAYERS[layer]


def test_core_is_light() -> None:
    # core loads for every lab and every command; torch and the frameworks load only inside functions there.
    heavy = {"torch", "monai", "nemo", "lightning", "pytriton", "tritonclient", "transformers", "onnxruntime"}
    offenders = []
    for path in (PACKAGE / "core").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in heavy]
    assert not offenders, offenders


def test_no_module_is_too_long_to_read() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"


def test_private_names_stay_in_their_module() -> None:
    crossing = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workshop_utils"):
                crossing += [f"{module_name(path)} imports {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
    assert not crossing, crossing
