"""Refuse names that would give a broken project, before anything is written."""

import keyword
import re
import sys

SLUG = "{{ cookiecutter.project_slug }}"
PACKAGE = "{{ cookiecutter.package_name }}"
TASK = "{{ cookiecutter.task }}"
FRAMEWORK = "{{ cookiecutter.framework }}"

# Importing the project's package must not hide a library it depends on.
SHADOWED = {
    "mlflow",
    "sklearn",
    "scikit_learn",
    "numpy",
    "pandas",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "torch",
    "keras",
    "interpret",
    "ebm2onnx",
    "tensorflow",
    "tf2onnx",
    "fairlearn",
    "great_expectations",
    "fastapi",
    "uvicorn",
    "pydantic",
    "yaml",
    "docker",
    "pytest",
    "cookiecutter",
    "matplotlib",
    "scipy",
    "ray",
    "gymnasium",
    "test",
    "tests",
    "src",
}


def problem() -> str | None:
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", SLUG):
        return (
            f"project_slug {SLUG!r} is not a valid folder/repository name: use lower-case "
            "letters, digits and single hyphens, starting with a letter (e.g. 'credit-model')."
        )
    if not PACKAGE.isidentifier() or not re.fullmatch(r"[a-z_][a-z0-9_]*", PACKAGE):
        return (
            f"package_name {PACKAGE!r} is not a valid Python package name: use lower-case "
            "letters, digits and underscores, starting with a letter (e.g. 'credit_model')."
        )
    if keyword.iskeyword(PACKAGE) or keyword.issoftkeyword(PACKAGE):
        return f"package_name {PACKAGE!r} is a Python keyword: choose another name."
    if TASK == "reinforcement" and FRAMEWORK != "pytorch":
        return (
            f"task=reinforcement trains its policy with RLlib's PyTorch modules, so framework={FRAMEWORK!r} "
            "would not be used: answer framework=pytorch "
            "(e.g. `cookiecutter ... task=reinforcement framework=pytorch`)."
        )
    if PACKAGE in SHADOWED or PACKAGE in sys.stdlib_module_names:
        return (
            f"package_name {PACKAGE!r} would shadow the module of the same name that the project "
            "needs: choose another name, e.g. 'my_model'."
        )
    return None


if __name__ == "__main__":
    message = problem()
    if message:
        print(f"ERROR: {message}", file=sys.stderr)
        sys.exit(1)
