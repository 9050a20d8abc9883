"""registry: find / download / promote against a real SQLite registry the test fills itself."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from {{ cookiecutter.package_name }} import registry
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.errors import UsageError

MODEL = "{{ cookiecutter.project_slug }}"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Two registered versions (commits aaaaaaa1 and bbbbbbb2), each run holding an onnx/model.onnx."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("registry-test", artifact_location=(tmp_path / "mlruns").as_uri())
    client.create_registered_model(MODEL)
    for sha in ("aaaaaaa1" * 5, "bbbbbbb2" * 5):
        run = client.create_run(experiment, tags={"git_sha": sha})
        onnx = tmp_path / "model.onnx"
        onnx.write_bytes(f"onnx of {sha}".encode())
        client.log_artifact(run.info.run_id, str(onnx), "onnx")
        client.set_terminated(run.info.run_id)
        client.create_model_version(MODEL, f"runs:/{run.info.run_id}/onnx", run.info.run_id,
                                    tags={"git_sha": sha, "run_id": run.info.run_id})
    yield client
    mlflow.set_tracking_uri(None)


def test_find_version_by_full_or_short_sha(store):
    assert registry.find_version(store, MODEL, "bbbbbbb2" * 5) == "2"
    assert registry.find_version(store, MODEL, "aaaaaaa1") == "1"


def test_find_version_names_what_is_missing(store):
    with pytest.raises(UsageError, match="git_sha=ccccccc3.*did CI's gate pass"):
        registry.find_version(store, MODEL, "ccccccc3")
    with pytest.raises(UsageError, match="at least 7"):
        registry.find_version(store, MODEL, "abc")


def test_download_onnx_fetches_the_exact_bytes_of_that_version(store, tmp_path):
    path = registry.download_onnx(store, MODEL, "1", tmp_path / "out" / "model.onnx")
    assert path.read_bytes() == b"onnx of " + ("aaaaaaa1" * 5).encode()


def test_download_of_an_unknown_version_fails_clearly(store, tmp_path):
    with pytest.raises(UsageError, match="version 9 not found"):
        registry.download_onnx(store, MODEL, "9", tmp_path / "model.onnx")


def test_promote_moves_the_alias_and_reports_the_previous_one(store):
    assert registry.promote(store, MODEL, "1", "champion") is None
    assert registry.promote(store, MODEL, "2", "champion") == "1"
    assert store.get_model_version_by_alias(MODEL, "champion").version in (2, "2")


def test_cli_commands_write_github_outputs(store, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "config.yaml"
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert main(["find-version", "--config", str(config), "--git-sha", "aaaaaaa1"]) == 0
    assert main(["promote", "--config", str(config), "--version", "1"]) == 0
    assert main(["download-onnx", "--config", str(config), "--version", "2",
                 "--output", str(tmp_path / "o" / "model.onnx")]) == 0
    lines = output.read_text().splitlines()
    assert "model_version=1" in lines and "previous_version=" in lines and "model_version=2" in lines
    assert main(["find-version", "--config", str(config), "--git-sha", "fffffff0"]) == 2
    assert "no version of model" in capsys.readouterr().err


def test_without_a_tracking_server_the_commands_say_so(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(UsageError, match="MLFLOW_TRACKING_URI"):
        registry.client_for(None)
