"""Remove what the chosen options do not use, then say what to run next."""

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

TASK = "{{ cookiecutter.task }}"
FRAMEWORK = "{{ cookiecutter.framework }}"
PIPELINE = (
    "validate -> train -> evaluate -> gate -> export -> register"
    if TASK == "reinforcement"
    else "validate -> tune -> train -> evaluate -> explain -> gate -> export -> register"
)
DEPLOY_TARGET = "{{ cookiecutter.deploy_target }}"
PACKAGE = "{{ cookiecutter.package_name }}"
SLUG = "{{ cookiecutter.project_slug }}"
PYTHON_VERSION = "{{ cookiecutter.python_version }}"
TRAIN_ON = "{{ cookiecutter.train_on }}"
LOCKED_FOR = "3.11"  # scripts/lock.sh resolves every framework's lock with this Python
# The whole context, for .cruft.json (raw string: JSON escapes must reach json.loads as written). Parsed
# when the hook runs, not at import: the template's tests import this file unrendered (framework_modules).
CONTEXT = r"""{{ cookiecutter | jsonify }}"""
# cookiecutter's own abbreviations (cookiecutter.config.BUILTIN_ABBREVIATIONS): cruft needs a git URL.
ABBREVIATIONS = {
    "gh": "https://github.com/{0}.git",
    "gl": "https://gitlab.com/{0}.git",
    "bb": "https://bitbucket.org/{0}",
}
# What cookiecutter adds to the context about this one run: no part of the project's template state.
RUN_ONLY = ("_output_dir", "_repo_dir", "_checkout")
# One folder per target (src/<package>/targets/<name>/, its tests in tests/targets/<name>/) and its one CI file,
# named for it (.github/workflows/_<verb>-<name>.yml or .github/actions/<verb>-<name>/): the chosen deploy target's
# and training platform's stay, every other target's go whole. Training on GitHub has no folder of its own.
# `<name>.yml` at the root is databricks.yml: the Databricks CLI takes the folder holding it as the bundle's root.
CHOSEN_TARGETS = {DEPLOY_TARGET, TRAIN_ON}
TARGETS = f"src/{PACKAGE}/targets"
TARGET_TESTS = "tests/targets"
NAMED_FOR_TARGET = (".github/workflows/_*-{name}.yml", ".github/actions/*-{name}", "{name}.yml")

# One folder per task family in the package and in the tests: the chosen family's stays, the others go whole.
FAMILY = "rl" if TASK == "reinforcement" else "tabular"
FAMILIES = {
    "tabular": (
        f"src/{PACKAGE}/tabular",
        "tests/tabular",
        "data",
        "notebooks",
        "bench",
        ".github/workflows/monitor.yml",
        ".github/workflows/score.yml",
        ".github/workflows/_score.yml",
    ),
    "rl": (f"src/{PACKAGE}/rl", "tests/rl"),
}
# Where a framework's modules may be (frameworks/__init__.py's MODULES names them), and their tests
# (tests/tabular/test_frameworks/test_<module>.py), which go with them. The bake's tests/tabular/conftest.py
# runs the encrypted tests first: TenSEAL crashes the process (SIGSEGV) when it first runs after Opacus, torch
# or TensorFlow were loaded in it.
FRAMEWORK_FOLDERS = (f"src/{PACKAGE}/tabular/frameworks", f"src/{PACKAGE}/tabular/training")
FRAMEWORK_TESTS = "tests/tabular/test_frameworks"


def drop_notebooks_from_lint(root: Path) -> None:
    # ci.yml is copied unrendered (raw: GitHub expressions): its lint steps lose the notebooks folder here.
    workflow = root / ".github" / "workflows" / "ci.yml"
    workflow.write_text(workflow.read_text().replace(" src tests notebooks", " src tests"))


def framework_modules(registry: Path, table: str = "MODULES") -> dict:
    """frameworks/__init__.py's MODULES (framework -> its modules), read without importing the package.

    `table="IMPORTED"` reads the imported models' frameworks instead: in no list of MODULES, so always kept.
    """
    for node in ast.parse(registry.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == table for target in targets):
                return ast.literal_eval(node.value)
    raise LookupError(f"no {table} in {registry}")


def remove_unused(root: Path) -> None:
    for family, paths in FAMILIES.items():
        if family != FAMILY:
            remove(root, paths)
    if FAMILY != "tabular":
        drop_notebooks_from_lint(root)
    for data_file in (root / "data").glob("credit_*.csv"):  # none left in a reinforcement-learning project
        if data_file.name != f"credit_{TASK}.csv":
            data_file.unlink()
    folders = [root / folder for folder in FRAMEWORK_FOLDERS if (root / folder).is_dir()]
    registry = root / FRAMEWORK_FOLDERS[0] / "__init__.py"
    modules = framework_modules(registry) if registry.is_file() else {FRAMEWORK: ()}
    # The other frameworks' modules; what every framework shares (__init__.py, base.py) is in no list.
    unused = {name for names in modules.values() for name in names} - set(modules[FRAMEWORK])
    for name in unused:
        for folder in folders:
            (folder / f"{name}.py").unlink(missing_ok=True)
        (root / FRAMEWORK_TESTS / f"test_{name}.py").unlink(missing_ok=True)
    for folder in folders:  # a folder left with nothing but its __init__.py (or nothing) goes too
        if not any(path.name != "__init__.py" for path in folder.glob("*.py")):
            shutil.rmtree(folder)
    # One lock per framework in the template, and one for reinforcement learning (scripts/lock.sh): the
    # chosen one becomes requirements.lock.
    locks = root / "requirements"
    lock = "reinforcement" if TASK == "reinforcement" else FRAMEWORK
    if (chosen := locks / f"{lock}.lock").is_file():
        chosen.replace(root / "requirements.lock")
    shutil.rmtree(locks, ignore_errors=True)
    remove_other_targets(root)
    for leftover in root.rglob("__pycache__"):
        shutil.rmtree(leftover)


def project_module(root: Path, name: str) -> ModuleType:
    """A module of the new project, imported from its src/ (only modules that need nothing but the standard library)."""
    sys.dont_write_bytecode = True  # no __pycache__ left in the new project
    if str(root / "src") not in sys.path:
        sys.path.insert(0, str(root / "src"))
    return importlib.import_module(f"{PACKAGE}.{name}")


def remove_other_targets(root: Path) -> None:
    for folder in sorted((root / TARGETS).iterdir()):
        if folder.is_dir() and folder.name not in CHOSEN_TARGETS:
            named = [path for pattern in NAMED_FOR_TARGET for path in root.glob(pattern.format(name=folder.name))]
            tests = root / TARGET_TESTS / folder.name
            remove(root, tuple(str(path.relative_to(root)) for path in (folder, *named, tests) if path.exists()))
    if (tests := root / TARGET_TESTS).is_dir() and not any(tests.iterdir()):
        tests.rmdir()


def write_stage_docs(root: Path) -> None:
    """The stages' help, written once in stages/__init__.py, copied into README.md's table and the Makefile's
    `## ` lines by the project's own code (`stages --write`; it imports no dependency), so each bake's copies
    are its own stage list's."""
    stage_docs = project_module(root, "stage_docs")
    for path, text in stage_docs.out_of_date(root).items():
        path.write_text(text)


# Plain YAML words that would not read back as the string they spell.
YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_value(value: object) -> str:
    """A literal from a framework module (numbers, strings, booleans, lists, dicts) as one line of YAML flow."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)  # PyYAML reads 1e-05 as a string: its mantissa needs a point
        return text if "." in text or "e" not in text else text.replace("e", ".0e", 1)
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z_][\w.-]*", value) and value.lower() not in YAML_WORDS
        return value if plain else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(key)}: {yaml_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"{value!r}: a framework's PARAMS and TUNE_SPACE hold numbers, strings, lists and dicts only")


def fill(text: str, section: str, key: str, values: dict, comment: str) -> str:
    """config.yaml with the empty `key:` of top-level `section:` given `values`, one line each."""
    lines = text.split("\n")
    start = lines.index(f"{section}:")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"[a-z]", lines[i])), len(lines))
    at = lines.index(f"  {key}:", start, end)  # ValueError: the template's config.yaml lost the key
    body = [f"    # {comment}"] + [f"    {yaml_value(name)}: {yaml_value(value)}" for name, value in values.items()]
    lines[at : at + 1] = [f"  {key}:", *body] if values else [f"  {key}: " + "{}"]
    return "\n".join(lines)


def write_framework_defaults(root: Path) -> None:
    """config.yaml's model.params and tune.space: the framework's PARAMS and TUNE_SPACE, as its module declares
    them (frameworks.declared), so that they are in front of the user. The code uses the same values when
    config.yaml leaves them out: the module stays the one place a framework's defaults are written."""
    params, space = project_module(root, "tabular.frameworks").declared(FRAMEWORK)
    declared_in = f"src/{PACKAGE}/tabular/frameworks"
    config = root / "config.yaml"
    text = config.read_text()
    text = fill(text, "model", "params", params, f"{FRAMEWORK}'s PARAMS (in {declared_in}), also if left out")
    text = fill(text, "tune", "space", space, f"{FRAMEWORK}'s TUNE_SPACE (in {declared_in}), also if left out")
    config.write_text(text)


def remove(root: Path, paths: tuple[str, ...]) -> None:
    for relative in paths:
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def template_folder(path: str) -> Path | None:
    """A local template's absolute folder, as cruft records it. The hook runs in the new project, so a
    relative path is resolved where cookiecutter is: it runs hooks from inside the template's folder
    (its working directory, read through /proc on Linux), else from where the user started it ($PWD)."""
    if not path:
        return None
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        running_in = Path(f"/proc/{os.getppid()}/cwd")
        if (running_in / "cookiecutter.json").is_file():
            candidate = running_in
        else:
            candidate = Path(os.environ.get("PWD", ".")) / candidate
    return candidate.resolve() if (candidate / "cookiecutter.json").is_file() else None


def write_cruft_state(root: Path, context: dict) -> str | None:
    """.cruft.json as `cruft create` writes it, for a project baked by plain `cookiecutter`: without it
    `cruft check` (template-drift.yml) and `cruft update` refuse to run. Under cruft (its context has
    `_commit`) cruft writes the file itself. Returns why it could not be written, or None."""
    if "_commit" in context or (root / ".cruft.json").exists():
        return None
    template = str(context.get("_template", ""))
    prefix, _, rest = template.partition(":")
    if prefix in ABBREVIATIONS and rest:
        template = ABBREVIATIONS[prefix].format(rest)
    elif folder := template_folder(template):
        template = str(folder)
    repo_dir = str(template_folder(str(context.get("_repo_dir", ""))) or template)
    found = subprocess.run(["git", "-C", repo_dir, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    commit = found.stdout.strip()
    if found.returncode != 0 or len(commit) != 40:
        return f"the template ({template}) is not a git checkout, so its commit is unknown"
    variables = {key: value for key, value in context.items() if not key.startswith("__") and key not in RUN_ONLY}
    state = {
        "template": template,
        "commit": commit,
        "checkout": context.get("_checkout"),
        "context": {"cookiecutter": variables | {"_template": template, "_commit": commit}},
        "directory": None,
    }
    (root / ".cruft.json").write_text(json.dumps(state, indent=2) + "\n")
    return None


if __name__ == "__main__":
    remove_unused(Path.cwd())
    if FAMILY == "tabular":
        write_framework_defaults(Path.cwd())
    write_stage_docs(Path.cwd())
    if problem := write_cruft_state(Path.cwd(), json.loads(CONTEXT)):
        print(f"No .cruft.json written: {problem}. To follow template updates: cruft link <template's git URL>")
    print(f"""
Created {SLUG}. Next:

    cd {SLUG}
    make setup        # .venv with the project and its dev tools
    make pipeline     # {PIPELINE}
    make serve        # the exported model on http://127.0.0.1:8000

Push it to GitHub and .github/workflows/ci.yml runs the same pipeline.
""")
    if PYTHON_VERSION != LOCKED_FOR:
        print(
            f"requirements.lock was resolved for Python {LOCKED_FOR}: with Python {PYTHON_VERSION} installed,\n"
            "run `make lock` once and commit the result (CI installs from the lock).\n"
        )
