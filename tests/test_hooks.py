"""The pre-generation hook refuses names that would give a broken project, and leaves nothing behind; the
post-generation hook keeps the chosen targets' folders and deletes every other target whole."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from conftest import PACKAGE, SOURCE, TEMPLATE, bake


@pytest.mark.parametrize(
    ("context", "complaint"),
    [
        ({"project_slug": "Credit Model"}, "project_slug"),
        ({"project_slug": "credit--model"}, "project_slug"),
        ({"package_name": "credit-model"}, "not a valid Python package name"),
        ({"package_name": "1model"}, "not a valid Python package name"),
        ({"package_name": "class"}, "Python keyword"),
        ({"package_name": "match"}, "Python keyword"),
        ({"package_name": "mlflow"}, "shadow"),
        ({"package_name": "sklearn"}, "shadow"),
        ({"package_name": "json"}, "shadow"),
    ],
)
def test_bad_names_are_refused_with_one_sentence(tmp_path, capfd, context, complaint):
    with pytest.raises(FailedHookException):
        bake(tmp_path, **context)
    err = capfd.readouterr().err
    assert complaint in err and err.count("ERROR:") == 1
    assert list(tmp_path.iterdir()) == []  # nothing half-generated


def test_names_derive_from_project_name(tmp_path):
    project = bake(tmp_path, project_name="Loan Default Risk")
    assert project.name == "loan-default-risk"
    assert (project / "src" / "loan_default_risk" / "cli.py").is_file()


def test_a_frameworks_defaults_are_written_as_yaml_that_reads_back_the_same():
    """The post-generation hook writes a framework's PARAMS and TUNE_SPACE into config.yaml (stdlib only)."""
    spec = importlib.util.spec_from_file_location("post_gen_project", TEMPLATE / "hooks" / "post_gen_project.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    declared = {
        "rate": 1e-05,  # PyYAML reads `1e-05` as a string
        "big": 1.5e20,
        "on": True,
        "units": [[64, 32], [128, 64]],
        "word": "yes",  # a YAML boolean unless quoted
        "estimator": "gradient_boosting",
        "spaced": "two words: here",
        "range": {"type": "loguniform", "low": 0.0005, "high": 0.01},
    }
    template = "model:\n  framework: x\n  params:\n  init_from:\ntune:\n  space:\n"
    written = hook.fill(template, "model", "params", declared, "the defaults")
    written = hook.fill(written, "tune", "space", {}, "none")
    read = yaml.safe_load(written)
    assert read["model"]["params"] == declared
    assert read["model"]["init_from"] is None and read["tune"]["space"] == {}


TEMPLATE_TARGETS = SOURCE / "targets"


def ci_files(root: Path, target: str) -> list[str]:
    """The one CI file named for a target: a reusable workflow `_<verb>-<target>.yml` or a local action."""
    named = [*root.glob(f".github/workflows/_*-{target}.yml"), *root.glob(f".github/actions/*-{target}")]
    return sorted(str(path.relative_to(root)) for path in named)


def test_each_target_in_the_template_is_one_folder_and_one_ci_file():
    targets = sorted(folder.name for folder in TEMPLATE_TARGETS.iterdir() if folder.is_dir())
    assert targets == ["azureml", "databricks", "kubernetes"]
    for target in targets:
        assert len(ci_files(TEMPLATE / "{{cookiecutter.project_slug}}", target)) == 1, target


@pytest.mark.parametrize(
    ("context", "kept"),
    [({}, {"kubernetes"}), ({"deploy_target": "azureml", "train_on": "databricks"}, {"azureml", "databricks"})],
    ids=["defaults", "azureml-databricks"],
)
def test_the_hook_keeps_the_chosen_targets_and_deletes_the_others_whole(tmp_path, context, kept):
    project = bake(tmp_path, **context)
    targets = project / "src" / PACKAGE / "targets"
    assert {folder.name for folder in targets.iterdir() if folder.is_dir()} == kept
    tests = project / "tests" / "targets"
    tested = {folder.name for folder in tests.iterdir()} if tests.is_dir() else set()
    assert tested == kept - {"kubernetes"}  # the Kubernetes target's scripts are tested by the template's tests
    for target in ("azureml", "databricks", "kubernetes"):
        assert bool(ci_files(project, target)) == (target in kept), target
    assert (project / "databricks.yml").is_file() == ("databricks" in kept)
