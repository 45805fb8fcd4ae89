"""The shape of the package: no import cycles anywhere in qa/, the heavy training
libraries imported at module level only where training happens, no function over 80
lines, and every exception class in the one tree of qa/errors.py."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

QA = ROOT / "qa"
HEAVY = {"torch", "transformers", "sentence_transformers", "datasets", "accelerate"}
# Where a module-level import of HEAVY is allowed: model building, and the one backend
# that hands models to sentence-transformers.
HEAVY_ALLOWED = ("qa/training/", "qa/encoder/st_backend.py")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in sorted(QA.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges(known: dict[str, Path], module_level_only: bool = False) -> dict[str, set[str]]:
    """module -> the modules it imports (any import, anywhere in the file, unless
    `module_level_only`). `from x import y` counts as importing x.y when that is a module."""
    edges: dict[str, set[str]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        targets: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, module, path.name == "__init__.py")
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        edges[module] = targets
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the modules of `edges`, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in sorted(edges.get(m, ())):
            if t not in edges:
                continue
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c", "os"}, "c": set()}) is None


def test_qa_has_no_import_cycles():
    edges = import_edges(_modules())
    assert len(edges) > 40
    assert edges["qa.corpus.synonyms"] >= {"qa.errors", "qa.text"}  # the walk sees relative imports
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_only_training_imports_torch_and_transformers_at_module_level():
    edges = import_edges(_modules(), module_level_only=True)
    offenders = {
        m: sorted({t.split(".")[0] for t in targets} & HEAVY)
        for m, targets in edges.items()
        if {t.split(".")[0] for t in targets} & HEAVY
        and not str(_modules()[m].relative_to(ROOT)).startswith(HEAVY_ALLOWED)
    }
    assert offenders == {}
    assert "torch" in {t.split(".")[0] for t in edges["qa.encoder.st_backend"]}  # the check sees real imports


MAX_FUNCTION_LINES = 80


def test_no_function_in_qa_is_over_80_lines():
    long = []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def _exception_classes(tree: ast.Module) -> list[str]:
    """Classes deriving from a base named like an exception (`...Error`, `...Exception`)."""
    return [
        node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
        and any(ast.unparse(b).split(".")[-1].endswith(("Error", "Exception")) for b in node.bases)
    ]


def test_every_exception_class_is_in_the_one_tree_of_qa_errors():
    assert _exception_classes(ast.parse("class Refused(ValueError): pass\nclass Fine: pass")) == ["Refused"]
    outside = {
        str(path.relative_to(ROOT)): found
        for path in _modules().values()
        if path != QA / "errors.py" and (found := _exception_classes(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert outside == {}
    errors = ast.parse((QA / "errors.py").read_text(encoding="utf-8"))
    assert len(_exception_classes(errors)) >= 10  # the check sees the real tree


def test_the_readme_table_names_every_folder_and_top_level_module_of_qa():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## How it works", 1)[1].split("\n## ", 1)[0]
    folders = [f"qa/{p.name}/" for p in sorted(QA.iterdir()) if p.is_dir() and p.name != "__pycache__"]
    modules = [f"qa/{p.name}" for p in sorted(QA.glob("*.py")) if p.name != "__init__.py"]
    assert "qa/rerank/" in folders and "qa/search.py" in modules
    assert [name for name in folders + modules if f"`{name}`" not in table] == []
