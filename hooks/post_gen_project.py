"""Remove what the chosen options do not use, then say what to run next."""

import ast
import shutil
from pathlib import Path

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
# What each deployment target alone uses (paths from the project root); the others' are removed.
DEPLOY_FILES = {
    "kubernetes": (
        "deploy/README.md",
        "deploy/deploy.sh",
        "deploy/kubeconfig.sh",
        "deploy/k8s",
        "deploy/smoke-request-v2.json",
        ".github/actions/deploy",
    ),
    "azureml": (
        "deploy/azureml",
        ".github/workflows/_deploy-azureml.yml",
        f"src/{PACKAGE}/ops/azureml.py",
        f"src/{PACKAGE}/ops/traffic.py",
        "tests/test_azureml_traffic.py",
    ),
}
# What only a project that trains on Databricks has (README, "Training on Databricks").
DATABRICKS_FILES = (
    "databricks.yml",
    "resources",
    ".github/workflows/_train-databricks.yml",
    f"src/{PACKAGE}/ops/databricks_job.py",
    "tests/test_databricks_job.py",
)

# A reinforcement-learning project (task=reinforcement) reads no table: what only tabular projects use is
# removed, and rl/stages/ takes the place of the tabular stages of the same names (same CLI, same lineage).
TABULAR_FILES = (
    "data",
    "notebooks",
    "bench",
    ".github/workflows/monitor.yml",
    ".github/workflows/score.yml",
    ".github/workflows/_score.yml",
    f"src/{PACKAGE}/data.py",
    f"src/{PACKAGE}/fairness.py",
    f"src/{PACKAGE}/plots.py",
    f"src/{PACKAGE}/sample_data.py",
    f"src/{PACKAGE}/label_import.py",
    f"src/{PACKAGE}/prediction_log_admin.py",
    f"src/{PACKAGE}/import_model.py",
    f"src/{PACKAGE}/init_config.py",
    f"src/{PACKAGE}/onnx_model.py",
    f"src/{PACKAGE}/attributions.py",
    f"src/{PACKAGE}/shapley.py",
    f"src/{PACKAGE}/transfer.py",
    f"src/{PACKAGE}/group_stats.py",
    f"src/{PACKAGE}/tuning.py",
    f"src/{PACKAGE}/stages/tune.py",
    f"src/{PACKAGE}/stages/explain.py",
    f"src/{PACKAGE}/encrypted_client.py",
    f"src/{PACKAGE}/frameworks",
    f"src/{PACKAGE}/scoring",
    f"src/{PACKAGE}/monitoring",
    f"src/{PACKAGE}/serving/encrypted.py",
    f"src/{PACKAGE}/serving/encrypted_api.py",
    f"src/{PACKAGE}/serving/linear.py",
    "tests/contract_model.py",
    "tests/test_encrypted.py",
    "tests/test_explanations.py",
    "tests/test_failures.py",
    "tests/test_import_model.py",
    "tests/test_init_config.py",
    "tests/test_monitoring.py",
    "tests/test_notebooks.py",
    "tests/test_pipeline.py",
    "tests/test_registry.py",
    "tests/test_request_log.py",
    "tests/test_scoring.py",
    "tests/test_serving.py",
    "tests/test_tables.py",
    "tests/test_transfer.py",
    "tests/test_privacy.py",
    "tests/test_tune.py",
    "tests/test_triton.py",
    "tests/test_units.py",
)
# What only a reinforcement-learning project has.
RL_FILES = (f"src/{PACKAGE}/rl", "tests/test_rl.py")


def use_rl_stages(root: Path) -> None:
    """rl/stages/<name>.py becomes stages/<name>.py: the pipeline keeps its stages, each doing its RL version."""
    replacements = root / "src" / PACKAGE / "rl" / "stages"
    for module in sorted(replacements.glob("*.py")):
        module.replace(root / "src" / PACKAGE / "stages" / module.name)
    replacements.rmdir()
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
    if TASK == "reinforcement":
        use_rl_stages(root)
        remove(root, TABULAR_FILES)
    else:
        remove(root, RL_FILES)
    for data_file in (root / "data").glob("credit_*.csv"):  # none left in a reinforcement-learning project
        if data_file.name != f"credit_{TASK}.csv":
            data_file.unlink()
    frameworks = root / "src" / PACKAGE / "frameworks"
    modules = framework_modules(frameworks / "__init__.py") if frameworks.is_dir() else {FRAMEWORK: ()}
    # The other frameworks' modules; what every framework shares (__init__.py, base.py) is in no list.
    unused = {name for names in modules.values() for name in names} - set(modules[FRAMEWORK])
    for name in unused:
        (frameworks / f"{name}.py").unlink()
    # One lock per framework in the template, and one for reinforcement learning (scripts/lock.sh): the
    # chosen one becomes requirements.lock.
    locks = root / "requirements"
    lock = "reinforcement" if TASK == "reinforcement" else FRAMEWORK
    if (chosen := locks / f"{lock}.lock").is_file():
        chosen.replace(root / "requirements.lock")
    shutil.rmtree(locks, ignore_errors=True)
    for target, paths in DEPLOY_FILES.items():
        if target != DEPLOY_TARGET:
            remove(root, paths)
    if (actions := root / ".github" / "actions").is_dir() and not any(actions.iterdir()):
        actions.rmdir()
    if TRAIN_ON != "databricks":
        remove(root, DATABRICKS_FILES)
    for leftover in root.rglob("__pycache__"):
        shutil.rmtree(leftover)


def remove(root: Path, paths: tuple[str, ...]) -> None:
    for relative in paths:
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


if __name__ == "__main__":
    remove_unused(Path.cwd())
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
