"""A family's pure/ folder computes and touches nothing outside the process, so its path tells a reader so
(README, "Modules"): its modules import none of the libraries that reach the tracking server, files, the
network, databases or other processes, and of this package only pure/ itself, the config, the errors, the
lineage names and the ONNX contract. Read from the source with `ast`, like test_import_graph.py (nothing is
imported); imports under `if TYPE_CHECKING:` are left out (they never run). Run by `make test` and CI.
"""

from __future__ import annotations

import ast

from test_import_graph import PACKAGE, families, import_graph, module_name, runtime_imports

# Top-level modules whose import means I/O. `ray` alone is the runtime (ray.init); RLlib's classes
# (`ray.rllib...`) build a policy module in this process and may be used.
OUTSIDE = {
    "mlflow",
    "requests",
    "httpx",
    "urllib",
    "socket",
    "subprocess",
    "shutil",
    "tempfile",
    "sqlalchemy",
    "psycopg",
    "boto3",
    "docker",
    "matplotlib",
}
RUNTIME = {"ray", "ray.tune", "ray.train", "ray.job_submission"}
# What a pure module may import of the package, besides its own family's pure/ and config.
CORE = {"config", "errors", "lineage", "serving.contract"}


def pure_modules() -> dict[str, ast.Module]:
    found = {}
    for family in sorted(families(PACKAGE)):
        for path in sorted((PACKAGE / family / "pure").rglob("*.py")):
            found[module_name(path, PACKAGE)] = ast.parse(path.read_text(), str(path))
    return found


def test_every_family_has_a_pure_folder():
    assert {name.split(".")[0] for name in pure_modules()} == families(PACKAGE)


def test_pure_modules_import_no_library_that_reaches_outside():
    wrong = []
    for name, tree in pure_modules().items():
        for node in runtime_imports(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # the package's own modules: the next test
            imported = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            wrong += [
                f"{name} imports {module}"
                for module in imported
                if module.split(".")[0] in OUTSIDE or module in RUNTIME
            ]
    assert not wrong, "pure/ does no I/O: move the code that does into dataio/, training/ or stages/:\n" + "\n".join(
        sorted(wrong)
    )


def test_pure_modules_import_only_pure_modules_and_the_core_vocabulary():
    graph = import_graph(PACKAGE)
    wrong = []
    for name in pure_modules():
        family = name.split(".")[0]
        allowed = CORE | {f"{family}.config", f"{family}.pure"}
        wrong += [
            f"{name} imports {target}"
            for target in graph[name]
            if target not in allowed and not target.startswith(f"{family}.pure.")
        ]
    assert not wrong, "pure/ depends on computation only (a type alone goes under `if TYPE_CHECKING:`):\n" + (
        "\n".join(sorted(wrong))
    )
