"""No import cycles between the project's own modules.

Every .py file under runner/, algorithms/, compressors/, datasets/ and models/ is parsed with
`ast` (nothing is imported).  Each file maps to its module name (runner/tasks/base.py ->
compress_train.runner.tasks.base, a package's __init__.py -> the package).  Every import of a
compress_train.* module becomes an edge, wherever it sits (module level, functions, methods, if
blocks): `import x`, `from x import y` (to x.y when x.y is a module, otherwise to x) and relative
imports.  Importing a.b.c also runs the __init__ of a.b and a, so edges go to those too -- except
to the importer's own ancestor packages, which are already being imported.  importlib calls with
string names are not edges.  Cycles are the strongly connected components (Tarjan) of size > 1
and self-imports; each is reported as `a -> b -> ... -> a` with the file and line of every edge.
"""

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {d: f"compress_train.{d}" for d in ("runner", "algorithms", "compressors", "datasets", "models")}


def project_modules(root, folders):
    """{module name: file path} for every .py file under the mapped folders."""
    modules = {}
    for folder, package in folders.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            modules[".".join([package, *parts[: -1 if parts[-1] == "__init__" else None]])] = path
    return modules


def import_edges(modules):
    """{(importer, imported): (path, line)} for every import between project modules."""
    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: climb level - 1 packages up from the importer's package
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                targets = []
            for target in targets:
                parts = target.split(".")
                for i in range(len(parts), 0, -1):  # the module itself, then its parent packages
                    dep = ".".join(parts[:i])
                    if dep in modules and not (i < len(parts) and name.startswith(dep + ".")):
                        edges.setdefault((name, dep), (path, node.lineno))
    return edges


def strongly_connected(nodes, graph):
    """Tarjan's algorithm; returns every component (a list of module names)."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = [stack.pop()]
            while comp[-1] != v:
                comp.append(stack.pop())
            on_stack.difference_update(comp)
            comps.append(comp)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return comps


def find_cycles(root, folders):
    """One readable cycle (`a -> b -> a` plus the import sites) per cyclic component."""
    modules = project_modules(root, folders)
    edges = import_edges(modules)
    graph = {}
    for src, dst in sorted(edges):
        graph.setdefault(src, []).append(dst)
    reports = []
    for comp in strongly_connected(modules, graph):
        start = min(comp)
        if len(comp) == 1 and (start, start) not in edges:
            continue
        members, parent, queue = set(comp), {}, deque([start])
        while queue:  # shortest path start -> ... -> start inside the component
            v = queue.popleft()
            if (v, start) in edges:
                break
            for w in graph.get(v, ()):
                if w in members and w not in parent and w != start:
                    parent[w] = v
                    queue.append(w)
        path = [start, v]
        while path[-1] != start:
            path.append(parent[path[-1]])
        path.reverse()
        sites = [f"    {a} -> {b}: {edges[a, b][0].relative_to(root)}:{edges[a, b][1]}" for a, b in zip(path, path[1:])]
        extra = f"\n    (component of {len(comp)}: {', '.join(sorted(comp))})" if len(comp) > len(path) - 1 else ""
        reports.append(" -> ".join(path) + "\n" + "\n".join(sites) + extra)
    return reports


def test_no_import_cycles():
    cycles = find_cycles(ROOT, FOLDERS)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(cycles)


def test_scanner_finds_a_cycle(tmp_path):
    pkg = tmp_path / "alpha"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from compress_train.alpha import b\n")  # function-level
    (pkg / "b.py").write_text("import os\nif os:\n    from . import a\n")  # relative, in an if block
    (pkg / "c.py").write_text("import compress_train.alpha.a\n")  # imports into the cycle, not part of it
    cycles = find_cycles(tmp_path, {"alpha": "compress_train.alpha"})
    assert len(cycles) == 1, cycles
    assert cycles[0].splitlines()[0] == "compress_train.alpha.a -> compress_train.alpha.b -> compress_train.alpha.a"
    assert "alpha/a.py:2" in cycles[0] and "alpha/b.py:3" in cycles[0]
