"""Remove what the chosen options do not use, then say what to run next."""

import shutil
from pathlib import Path

TASK = "{{ cookiecutter.task }}"
FRAMEWORK = "{{ cookiecutter.framework }}"
PACKAGE = "{{ cookiecutter.package_name }}"
SLUG = "{{ cookiecutter.project_slug }}"
PYTHON_VERSION = "{{ cookiecutter.python_version }}"
LOCKED_FOR = "3.11"  # scripts/lock.sh resolves every framework's lock with this Python

# Framework modules in src/<package>/frameworks/, by cookiecutter choice.
FRAMEWORK_MODULES = {"sklearn": ["scikit_learn.py"], "pytorch": ["pytorch.py", "tabular.py"],
                     "keras": ["keras3.py", "tabular.py"]}


def remove_unused(root: Path) -> None:
    for data_file in (root / "data").glob("credit_*.csv"):
        if data_file.name != f"credit_{TASK}.csv":
            data_file.unlink()
    frameworks = root / "src" / PACKAGE / "frameworks"
    keep = set(FRAMEWORK_MODULES[FRAMEWORK]) | {"__init__.py"}
    for module in frameworks.glob("*.py"):
        if module.name not in keep:
            module.unlink()
    # One lock per framework in the template (scripts/lock.sh): the chosen one becomes requirements.lock.
    locks = root / "requirements"
    if (chosen := locks / f"{FRAMEWORK}.lock").is_file():
        chosen.replace(root / "requirements.lock")
    shutil.rmtree(locks, ignore_errors=True)
    for leftover in root.rglob("__pycache__"):
        shutil.rmtree(leftover)


if __name__ == "__main__":
    remove_unused(Path.cwd())
    print(f"""
Created {SLUG}. Next:

    cd {SLUG}
    make setup        # .venv with the project and its dev tools
    make pipeline     # validate -> train -> evaluate -> gate -> export
    make serve        # the exported model on http://127.0.0.1:8000

Push it to GitHub and .github/workflows/ci.yml runs the same pipeline.
""")
    if PYTHON_VERSION != LOCKED_FOR:
        print(f"requirements.lock was resolved for Python {LOCKED_FOR}: with Python {PYTHON_VERSION} installed,\n"
              "run `make lock` once and commit the result (CI installs from the lock).\n")
