"""Databricks and Azure ML tracking with something missing: one paragraph naming it (exit 2), no traceback."""

from __future__ import annotations

import os

import pytest

from {{ cookiecutter.package_name }} import managed_tracking

AZUREML = (
    "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/00000000-0000-0000-0000-000000000000"
    "/resourceGroups/ml/providers/Microsoft.MachineLearningServices/workspaces/credit"
)
HOST = "https://adb-1234567890123456.7.azuredatabricks.net"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No Databricks, Azure or Actions settings from the shell; an empty home (no ~/.databrickscfg, no az login)."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "AZURE_", "ARM_", "ACTIONS_ID_TOKEN")) or name in ("MSI_ENDPOINT",):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no `az` to find
    return monkeypatch


@pytest.mark.parametrize(
    ("uri", "env", "expected"),
    [
        ("databricks", {}, "no Databricks workspace is named: set DATABRICKS_HOST"),
        ("databricks", {"DATABRICKS_HOST": HOST}, f"workspace {HOST} but no credential"),
        ("databricks://team", {}, "uses the Databricks profile 'team', which is not in"),
        (
            "databricks",
            {"DATABRICKS_HOST": HOST, "DATABRICKS_AUTH_TYPE": "github-oidc", "DATABRICKS_CLIENT_ID": "sp"},
            "ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN is unset",
        ),
        ("azureml://westeurope.api.azureml.ms/mlflow/v1.0", {}, "az ml workspace show --query mlflow_tracking_uri"),
        (AZUREML, {}, "the azureml-mlflow plugin that lets MLflow talk to it is not installed"),
    ],
)
def test_stage_stops_with_what_is_missing(workspace, clean_env, capsys, uri, env, expected):
    clean_env.setenv("MLFLOW_TRACKING_URI", uri)
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert workspace.cli("gate") == 2  # the store is reached before the run is looked for
    err = capsys.readouterr().err
    assert expected in err
    assert 'README.md, "Tracking on Databricks or Azure ML"' in err
    assert "Traceback" not in err
    assert not (workspace.outputs / "gate.json").exists()


def test_what_is_enough_passes(clean_env, tmp_path):
    env = {"HOME": str(tmp_path), "PATH": str(tmp_path)}
    assert managed_tracking.problem("databricks", env | {"DATABRICKS_HOST": HOST, "DATABRICKS_TOKEN": "t"}) is None
    (tmp_path / ".databrickscfg").write_text(f"[team]\nhost = {HOST}\nauth_type = databricks-cli\n")
    assert managed_tracking.problem("databricks://team", env) is None
    oidc = {"DATABRICKS_HOST": HOST, "DATABRICKS_AUTH_TYPE": "github-oidc", "DATABRICKS_CLIENT_ID": "sp"}
    actions = {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://token", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}
    assert managed_tracking.problem("databricks", env | oidc | actions) is None
    assert managed_tracking.problem("databricks", {"DATABRICKS_RUNTIME_VERSION": "17.3"}) is None
    federated = {"AZURE_CLIENT_ID": "a", "AZURE_TENANT_ID": "t", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"}
    assert managed_tracking.problem(AZUREML, env | federated, azureml_plugin=True) is None
    # The plugin present but nobody logged in: the check says so instead of a dozen credential failures.
    message = managed_tracking.problem(AZUREML, env, azureml_plugin=True)
    assert message is not None and "no Azure credential is available" in message
