"""The pre-generation hook refuses names that would give a broken project, and leaves nothing behind."""

from __future__ import annotations

import pytest
from cookiecutter.exceptions import FailedHookException

from conftest import bake


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
