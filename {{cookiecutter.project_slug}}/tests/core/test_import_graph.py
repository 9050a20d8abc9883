"""The package's import graph, read from its source with `ast` (nothing is imported): the core never
imports a task family, and no module imports itself back through others. Run by `make test` and CI.

The core is every module outside a family folder (a folder with a family.py: tabular/, rl/). A family
may import the core and itself; the core finds the family at run time (family.py) and names none.
Imports under `if TYPE_CHECKING:` are left out (they never run); imports inside functions count: a
cycle deferred into a function is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "{{ cookiecutter.package_name }}"


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.Module) -> Iterator[ast.ImportFrom | ast.Import]:
    """Every import statement but those under `if TYPE_CHECKING:`."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            pending.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name imported from a package counts as its module
    when it is one: `from .. import lineage` is an edge to lineage)."""
    files = {module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if name else []
        if not is_package:
            here = here[:-1]
        edges: set[str] = set()
        for node in runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):  # `import <package>.x`: absolute, from the package's name
                bases = [alias.name.split(".") for alias in node.names]
                names: list[str | None] = [None] * len(bases)
            elif node.level == 0:
                bases = [(node.module or "").split(".")] * len(node.names)
                names = [alias.name for alias in node.names]
            else:
                bases = [[package.name, *here[: len(here) - node.level + 1], *([node.module] if node.module else [])]]
                bases *= len(node.names)
                names = [alias.name for alias in node.names]
            for base, imported in zip(bases, names, strict=True):
                if base[0] != package.name:
                    continue  # another package
                module = ".".join(base[1:])
                target = f"{module}.{imported}".strip(".") if imported else module
                target = target if target in files else module
                if target in files and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def families(package: Path) -> set[str]:
    return {folder.name for folder in package.iterdir() if (folder / "family.py").is_file()}


def family_of(module: str, names: set[str]) -> str | None:
    top = module.split(".")[0]
    return top if top in names else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_core_imports_no_family():
    graph, names = import_graph(PACKAGE), families(PACKAGE)
    assert names, f"no family folder (a folder with family.py) in {PACKAGE}"
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if family_of(module, names) is None
        for target in targets
        if family_of(target, names) is not None
    )
    assert not wrong, "the core must not import a family (register with family.py instead):\n" + "\n".join(wrong)


def test_no_family_imports_another():
    graph, names = import_graph(PACKAGE), families(PACKAGE)
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if None is not family_of(module, names) != family_of(target, names) is not None
    )
    assert not wrong, "\n".join(wrong)


def test_the_import_graph_has_no_cycles():
    found = cycles(import_graph(PACKAGE))
    assert not found, "modules that import each other (move the shared part into a module both import):\n" + (
        "\n".join(" <-> ".join(component) for component in found)
    )
