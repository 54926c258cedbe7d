"""The package's structure: no import circle anywhere in dqt_hw (the graph of its
``import`` statements, function-local ones included, is acyclic), and every module and
function stays small (at most 800 lines, at most 12 parameters: docs/speed.md, "Layout")."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "dqt_hw"
MAX_LINES = 800
MAX_PARAMS = 12


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, known) -> set:
    """The dqt_hw modules that ``import`` statements of the module import (at any
    depth in the file: function-local imports count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod
                       for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def import_graph():
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def _cycle(graph):
    """One import circle of ``graph`` as a list of modules, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_import_graph_has_no_circle():
    graph = import_graph()
    assert "dqt_hw.model.drivers" in graph and graph["dqt_hw.net.executor"]
    cyc = _cycle(graph)
    assert cyc is None, "import circle: " + " -> ".join(cyc)


def test_the_circle_finder_finds_circles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_net_uses_no_private_model_module():
    """The executor and the programs use ``dqt_hw.model``'s public modules only."""
    graph = import_graph()
    for m in ("dqt_hw.net.executor", "dqt_hw.net.program", "dqt_hw.net.plan"):
        private = [n for n in graph[m] if n.rpartition(".")[2].startswith("_")]
        assert not private, (m, private)
    assert "dqt_hw.net.program" not in graph["dqt_hw.net.executor"]
    assert "dqt_hw.net.executor" not in graph["dqt_hw.net.program"]


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_are_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
    rel = str(path.relative_to(ROOT))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            n = (len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                 + (a.vararg is not None) + (a.kwarg is not None))
            assert n <= MAX_PARAMS, f"{rel}: {node.name} takes {n} parameters"
