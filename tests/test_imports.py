"""The package's modules import each other without cycles.

Every module under ``src/skeletonmae`` is parsed with ``ast`` (nothing is imported) and its imports of other
modules of the package become the edges of a graph, which must have no cycle.

Only imports that run when the module is imported count: the module's top level, including the bodies of
module-level ``if`` / ``try`` / ``with`` blocks and of classes. Imports inside functions are left out (they run
when the function is called, after every module has loaded; that is how commands defer torch), and so are the
blocks under ``if TYPE_CHECKING:`` and ``if __name__ == "__main__":``, which never run on import. ``from X
import Y`` is an edge to ``X.Y`` when that is a module, else to ``X``; packages imported implicitly as parents
of a module (``a`` for ``import a.b``) are not edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "skeletonmae"


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (``pkg.sub`` for ``pkg/sub/__init__.py``)."""
    root = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _skipped_if(node: ast.If) -> bool:
    test = node.test
    if isinstance(test, ast.Name | ast.Attribute):  # TYPE_CHECKING, typing.TYPE_CHECKING
        return (test.id if isinstance(test, ast.Name) else test.attr) == "TYPE_CHECKING"
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def import_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported (see the module docstring)."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and _skipped_if(node):
            todo.extend(node.orelse)
        elif isinstance(node, ast.stmt | ast.excepthandler):  # blocks: if, try, with, for, class bodies
            todo.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt | ast.excepthandler))
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at import time."""
    modules = module_files(package_dir)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in import_time_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".")
                    base = base[:len(base) - node.level + (1 if is_package else 0)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                subs = [f"{base}.{alias.name}" for alias in node.names]
                targets = [s if s in modules else base for s in subs]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE_DIR)
    assert {"skeletonmae.cli", "skeletonmae.cli.train", "skeletonmae.viz", "skeletonmae.tasks.finetune"} <= set(graph)
    assert "skeletonmae.config" in graph["skeletonmae.cli.train"]  # the edges are found
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cli_package_imports_no_command_module_at_import_time():
    """``skeletonmae.cli`` builds its parser from the command modules, imported inside ``build_parser``."""
    assert import_graph(PACKAGE_DIR)["skeletonmae.cli"] == {"skeletonmae.errors"}


def test_cycles_are_found_and_deferred_imports_ignored(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from .sub.c import f\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("try:\n    import pkg.a\nexcept ImportError:\n    pass\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
                              "def f():\n    from . import a\nif __name__ == '__main__':\n    from . import a\n")
    graph = import_graph(pkg)
    assert graph["pkg.d"] == set() and graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.sub.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    (pkg / "sub" / "c.py").write_text("def g():\n    import pkg.a\n")
    assert find_cycle(import_graph(pkg)) is None


def test_library_modules_hold_no_command_line():
    """Parsers and ``cmd_*`` functions live in ``skeletonmae.cli``; library modules neither build nor import them."""
    for name, path in module_files(PACKAGE_DIR).items():
        if name == "skeletonmae.cli" or name.startswith("skeletonmae.cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [node.module or ""] + [alias.name for alias in node.names]
            else:
                imported = []
            assert "argparse" not in imported, f"{name} imports argparse"
            assert "cli" not in {part for m in imported for part in m.split(".")}, f"{name} imports the CLI"
            if isinstance(node, ast.FunctionDef):
                assert not node.name.startswith("cmd_"), f"{name} defines {node.name}"
