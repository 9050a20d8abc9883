"""registry: what a release may ship, checked against a real SQLite registry the test fills itself.

Each bypass of the trust chain is tried here: a version from another ref, with a failed gate, with a
failed parity check, without a digest, with an ONNX file that no longer matches its digest, and a
run id shaped to inject into $GITHUB_OUTPUT. Each must be refused with a message saying why.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.ops import registry

MODEL = "{{ cookiecutter.project_slug }}"
CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
MAIN = "refs/heads/main"


class Store:
    def __init__(self, client: MlflowClient, experiment: str, folder: Path):
        self.client, self.experiment, self.folder = client, experiment, folder

    def add(self, sha: str, tamper_file: bool = False, **changed: str) -> str:
        """A run with an ONNX file and a version carrying the tags `register` writes (then `changed`)."""
        payload = f"onnx of {sha}".encode()
        run = self.client.create_run(self.experiment, tags={"git_sha": sha})
        onnx = self.folder / "model.onnx"
        onnx.write_bytes(payload + (b" tampered" if tamper_file else b""))
        self.client.log_artifact(run.info.run_id, str(onnx), "onnx")
        self.client.set_terminated(run.info.run_id)
        tags = {
            "git_sha": sha,
            "run_id": run.info.run_id,
            "source_ref": MAIN,
            "gate.verdict": "passed",
            "export.parity": "passed",
            "onnx.sha256": hashlib.sha256(payload).hexdigest(),
        } | changed
        version = self.client.create_model_version(
            MODEL,
            f"runs:/{run.info.run_id}/onnx",
            run.info.run_id,
            tags={k: v for k, v in tags.items() if v is not None},
        )
        return str(version.version)


@pytest.fixture
def store(tmp_path, monkeypatch, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("registry-test", artifact_location=(tmp_path / "mlruns").as_uri())
    client.create_registered_model(MODEL)
    yield Store(client, experiment, tmp_path)
    mlflow.set_tracking_uri(None)


A, B = "aaaaaaa1" * 5, "bbbbbbb2" * 5


def test_find_version_by_full_or_short_sha(store):
    store.add(A)
    store.add(B)
    assert registry.find_version(store.client, MODEL, B) == "2"
    assert registry.find_version(store.client, MODEL, "aaaaaaa1") == "1"


def test_find_version_names_what_is_missing(store):
    with pytest.raises(UsageError, match="git_sha=ccccccc3.*did CI on refs/heads/main pass the gate"):
        registry.find_version(store.client, MODEL, "ccccccc3")
    with pytest.raises(UsageError, match="7 to 40"):
        registry.find_version(store.client, MODEL, "abc")


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"source_ref": "refs/heads/feature"}, "registered from refs/heads/feature, not refs/heads/main"),
        ({"source_ref": None}, "registered from an unknown ref"),
        ({"gate.verdict": "failed"}, "gate verdict is failed"),
        ({"export.parity": "failed"}, "parity check is failed"),
        ({"export.parity": None}, "parity check is missing"),
        ({"onnx.sha256": None}, "no ONNX digest"),
    ],
)
def test_a_version_that_did_not_earn_it_never_ships(store, changed, reason):
    version = store.add(A, **changed)
    with pytest.raises(UsageError, match=f"may ship: version 1: .*{reason}"):
        registry.find_version(store.client, MODEL, A)
    with pytest.raises(UsageError, match=reason):
        registry.shippable_version(store.client, MODEL, version)


def test_the_newest_verified_version_wins_over_a_newer_unverified_one(store):
    """A feature branch registering for a commit that is later tagged must not choose what ships."""
    good = store.add(A)
    store.add(A, source_ref="refs/heads/feature")
    assert registry.find_version(store.client, MODEL, A) == good


def test_download_onnx_fetches_the_exact_bytes_of_that_version(store, tmp_path):
    store.add(A)
    client = store.client
    found = registry.shippable_version(client, MODEL, "1")
    path = registry.download_verified(
        client, registry.run_of(found), found.tags["onnx.sha256"], tmp_path / "out" / "model.onnx"
    )
    assert path.read_bytes() == f"onnx of {A}".encode()


def test_a_file_that_does_not_match_its_digest_is_refused_and_not_left_behind(store, tmp_path):
    store.add(A, tamper_file=True)
    output = tmp_path / "out" / "model.onnx"
    with pytest.raises(UsageError, match="the file changed since"):
        found = registry.shippable_version(store.client, MODEL, "1")
        registry.download_verified(store.client, registry.run_of(found), found.tags["onnx.sha256"], output)
    assert not output.exists()


def test_download_of_an_unknown_version_fails_clearly(store):
    with pytest.raises(UsageError, match="version 9 not found"):
        registry.shippable_version(store.client, MODEL, "9")


def test_promote_moves_the_alias_and_reports_the_previous_one(store):
    store.add(A)
    store.add(B)
    assert registry.promote(store.client, MODEL, "1", "champion") is None
    assert registry.promote(store.client, MODEL, "2", "champion") == "1"
    assert store.client.get_model_version_by_alias(MODEL, "champion").version in (2, "2")


def test_cli_commands_write_github_outputs(store, tmp_path, monkeypatch, capsys):
    store.add(A)
    store.add(B)
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert main(["find-version", "--config", str(CONFIG), "--git-sha", "aaaaaaa1"]) == 0
    assert main(["promote", "--config", str(CONFIG), "--version", "1"]) == 0
    assert (
        main(
            ["download-onnx", "--config", str(CONFIG), "--version", "2", "--output", str(tmp_path / "o" / "model.onnx")]
        )
        == 0
    )
    lines = output.read_text().splitlines()
    assert "model_version=1" in lines and "previous_version=" in lines and "model_version=2" in lines
    assert f"onnx_sha256={hashlib.sha256(f'onnx of {B}'.encode()).hexdigest()}" in lines
    assert main(["find-version", "--config", str(CONFIG), "--git-sha", "fffffff0"]) == 2
    assert "no version of model" in capsys.readouterr().err


def test_cli_refuses_to_promote_or_download_an_unverified_version(store, tmp_path, capsys):
    store.add(A, **{"gate.verdict": "failed"})
    assert main(["promote", "--config", str(CONFIG), "--version", "1"]) == 2
    assert "gate verdict is failed" in capsys.readouterr().err
    assert (
        main(
            ["download-onnx", "--config", str(CONFIG), "--version", "1", "--output", str(tmp_path / "o" / "model.onnx")]
        )
        == 2
    )
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):  # argparse: not a version number
        main(["promote", "--config", str(CONFIG), "--version", "1\nmode=registry"])


def test_a_run_id_shaped_to_inject_outputs_is_refused(store, tmp_path, monkeypatch, capsys):
    """A `run_id` tag holding a newline and `name<<EOF` must never reach $GITHUB_OUTPUT."""
    store.add(A, run_id="0" * 32 + "\nmode<<EOF\nregistry\nEOF")
    output = tmp_path / "github_output"
    output.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert main(["find-version", "--config", str(CONFIG), "--git-sha", A]) == 2
    assert "refusing to publish run_id=" in capsys.readouterr().err
    assert output.read_text() == ""


def test_without_a_tracking_server_the_commands_say_so(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(UsageError, match="MLFLOW_TRACKING_URI"):
        registry.client_for(None)
