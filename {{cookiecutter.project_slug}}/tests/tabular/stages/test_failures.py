"""What must stop the pipeline, and what it must leave behind (nothing registered, nothing half-written)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import tracking
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.tabular import config as configuration


def copy_of(space, folder):
    """A copy of a workspace whose stages ran once for the module: a test changes its copy, never the original.
    Its store is pointed at the copy's own artifacts first, as every stage's connect does, so that a client
    used before any stage (the swapping process below) writes into the copy too."""
    shutil.copytree(space.root, folder)
    copied = type(space)(folder)
    assert tracking.relocate_embedded_store(configuration.load(copied.config))  # the store did move
    return copied


@pytest.fixture
def evaluated(evaluated_run, tmp_path):
    """validate, train and evaluate done on the project's own config (the module's one training)."""
    return copy_of(evaluated_run, tmp_path / "project")


@pytest.fixture(scope="module")
def exported_run(evaluated_run, tmp_path_factory):
    space = copy_of(evaluated_run, tmp_path_factory.mktemp("exported") / "project")
    for stage in ("gate", "export"):
        assert space.cli(stage) == 0, stage
    return space


@pytest.fixture
def exported(exported_run, tmp_path):
    """validate, train, evaluate, gate and export done on the project's own config."""
    return copy_of(exported_run, tmp_path / "project")


@pytest.mark.system
def test_corrupted_data_fails_validation_naming_columns(workspace, capsys):
    settings = configuration.load(workspace.config)
    frame = pd.read_csv(settings.data_path)
    frame.loc[:10, "age"] = -5
    frame.loc[:3, "sex"] = "unknown"
    frame = frame.drop(columns=["purpose"])
    frame.to_csv(settings.data_path, index=False)

    assert workspace.cli("pipeline") == 1
    message = capsys.readouterr().err
    assert "age" in message and "sex" in message and "purpose" in message
    assert not (workspace.outputs / "run.json").exists()  # training never started
    assert not (workspace.outputs / "model.onnx").exists()
    # The rejection itself is on record, with the full result, in a run without a model.
    client = workspace.client()
    (rejected,) = client.search_runs([client.get_experiment_by_name(settings.tracking.experiment).experiment_id])
    assert rejected.data.tags["stage.validate"] == "failed" and "model.uri" not in rejected.data.tags


def test_bad_config_names_the_key(workspace, capsys):
    workspace.edit_config(lambda c: c["split"].update(test_fraction=0.3))
    assert workspace.cli("validate") == 2
    assert "split.test_fraction" in capsys.readouterr().err


def test_stage_without_a_run_says_so(workspace, capsys):
    assert workspace.cli("evaluate") == 2
    assert "no run to attach to" in capsys.readouterr().err
    assert workspace.cli("gate", "--run-id", "0" * 32) == 2
    assert "is not in the tracking store" in capsys.readouterr().err


@pytest.mark.system
def test_gate_out_of_reach_fails_and_registers_nothing(evaluated, capsys):
    workspace = evaluated  # validate, train and evaluate passed; only `gate` reads the thresholds changed here
    settings = configuration.load(workspace.config)
    metric = next(iter(settings.gate.thresholds))
    lower_better = settings.gate.thresholds[metric].max is not None
    out_of_reach = {"max": -1.0} if lower_better else {"min": 10.0}
    workspace.edit_config(lambda c: c["gate"]["thresholds"].update({metric: out_of_reach}))
    assert workspace.cli("gate") == 1
    assert "nothing was registered" in capsys.readouterr().err
    client = workspace.client()
    assert client.search_model_versions(f"name = '{settings.tracking.model_name}'") == []
    assert "FAIL" in (workspace.outputs / "gate.md").read_text()


@pytest.mark.system
def test_own_data_from_the_command_line(workspace):
    settings = configuration.load(workspace.config)
    frame = pd.read_csv(settings.data_path).rename(columns={settings.data.target: "label"}).sample(1500, random_state=3)
    own = workspace.root / "mine.csv"
    frame.to_csv(own, index=False)
    workspace.edit_config(lambda c: c["gate"].update(thresholds={}))  # gates are for the bundled data
    assert workspace.cli("pipeline", "--data", str(own), "--target", "label") == 0
    assert (workspace.outputs / "model.onnx").is_file()


@pytest.mark.system
def test_no_regression_against_the_champion(workspace):
    settings = configuration.load(workspace.config)
    name = settings.tracking.model_name
    client = workspace.client()
    assert workspace.cli("pipeline") == 0
    assert workspace.cli("register") == 0  # a retried job reuses its version instead of registering again
    (first,) = client.search_model_versions(f"name = '{name}'")
    client.set_registered_model_alias(name, "champion", first.version)

    # A much weaker model: every absolute threshold dropped, only the comparison can stop it.
    def weaken(c):
        c["gate"]["thresholds"] = {}
        c["gate"]["regression_tolerance"] = 0.0
        weaker = {"sklearn": {"max_iter": 2}, "ebm": {"max_rounds": 1, "interactions": 0}}
        c["model"]["params"] = weaker.get(c["model"]["framework"], c["model"]["params"] | {"epochs": 1})

    workspace.edit_config(weaken)
    for stage in ("train", "evaluate"):
        assert workspace.cli(stage) == 0
    assert workspace.cli("gate") == 1
    report = (workspace.outputs / "gate.md").read_text()
    assert "vs champion" in report and "FAIL" in report
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [first.version]


def registered_versions(workspace) -> list:
    name = configuration.load(workspace.config).tracking.model_name
    return workspace.client().search_model_versions(f"name = '{name}'")


@pytest.mark.system
def test_failed_parity_is_never_registered(workspace, capsys):
    """The export is checked before anything is registered: a model whose ONNX file does not reproduce
    it gets no version and no alias."""
    settings = configuration.load(workspace.config)
    workspace.edit_config(lambda c: c["export"].update(parity_tolerance=1e-15))
    assert workspace.cli("pipeline") == 1
    assert "ONNX parity failed" in capsys.readouterr().err
    assert workspace.cli("register") == 1
    assert "parity check is failed" in capsys.readouterr().err
    client = workspace.client()
    assert client.search_model_versions(f"name = '{settings.tracking.model_name}'") == []
    assert not (workspace.outputs / "registered.json").exists()


@pytest.mark.system
def test_failed_gate_is_never_registered(evaluated, capsys):
    workspace = evaluated  # validate, train and evaluate passed; only `gate` reads the thresholds changed here
    workspace.edit_config(
        lambda c: c["gate"].update(thresholds={name: {"min": 10.0, "max": -10.0} for name in c["gate"]["thresholds"]})
    )
    assert workspace.cli("gate") == 1
    assert workspace.cli("export") == 0  # export alone proves nothing about the gate
    assert workspace.cli("register") == 1
    assert "gate verdict is failed" in capsys.readouterr().err
    assert registered_versions(workspace) == []


@pytest.mark.system
def test_a_model_failing_fairness_alone_is_never_registered(evaluated, capsys):
    """The data checks and every metric threshold pass; the fairness thresholds alone fail the model: set to half
    the disparity that Fairlearn measured for it (evaluate's metrics), a gap between groups still there. The gate
    names those checks only, and `register` refuses the run."""
    workspace = evaluated  # validate, train and evaluate passed on the project's own config
    settings = configuration.load(workspace.config)
    run_id = json.loads((workspace.outputs / "run.json").read_text())["run_id"]
    observed = workspace.client().get_run(run_id).data.metrics
    fairness = [name for name in settings.gate.thresholds if name.startswith("fairness.")]
    assert fairness and all(settings.gate.thresholds[name].max is not None for name in fairness), fairness
    assert all(observed[name] > 0 for name in fairness), {name: observed[name] for name in fairness}
    stricter = {name: {"max": observed[name] / 2} for name in fairness}
    workspace.edit_config(lambda c: c["gate"]["thresholds"].update(stricter))

    assert workspace.cli("gate") == 1
    assert f"gate failed ({', '.join(fairness)}); nothing was registered" in capsys.readouterr().err
    checks = json.loads((workspace.outputs / "gate.json").read_text())["checks"]
    assert [check["name"] for check in checks if not check["passed"]] == fairness
    assert set(settings.gate.thresholds) - set(fairness) <= {check["name"] for check in checks if check["passed"]}
    assert workspace.cli("export") == 0  # the export passes too: only fairness stands in the way
    assert workspace.cli("register") == 1
    assert "gate verdict is failed" in capsys.readouterr().err
    assert registered_versions(workspace) == []


@pytest.mark.system
def test_onnx_changed_after_export_is_refused(exported, capsys):
    workspace = exported  # validate, train, evaluate, gate and export passed
    (stored,) = (workspace.root / "mlruns").rglob("onnx/model.onnx")
    stored.write_bytes(stored.read_bytes() + b"tampered")
    assert workspace.cli("register") == 1
    assert "the file changed since" in capsys.readouterr().err
    assert registered_versions(workspace) == []


# Run by a second process on the same tracking store: what a principal with edit rights on main's run
# (a shared Databricks experiment, a tracking-server user) can do between CI's export and register jobs.
SWAP = """
import hashlib, sys
from mlflow.tracking import MlflowClient

uri, run_id, path = sys.argv[1:]
client = MlflowClient(uri)
client.log_artifact(run_id, path, "onnx")  # replaces onnx/model.onnx
client.set_tag(run_id, "onnx.sha256", hashlib.sha256(open(path, "rb").read()).hexdigest())
client.set_tag(run_id, "gate.verdict", "passed")
"""


@pytest.mark.system
def test_a_file_swapped_between_export_and_register_is_refused(exported, capsys):
    """register holds the stored file and its tag to the digest export's CI job published (a job output),
    so a file and tags rewritten consistently by someone else are refused."""
    workspace = exported  # validate, train, evaluate, gate and export passed
    capsys.readouterr()
    assert main(["onnx-digest", "--model", str(workspace.outputs / "model.onnx")]) == 0  # export's CI step
    published = capsys.readouterr().out.strip().removeprefix("onnx_sha256=")
    assert published == hashlib.sha256((workspace.outputs / "model.onnx").read_bytes()).hexdigest()

    run_id = json.loads((workspace.outputs / "run.json").read_text())["run_id"]
    (workspace.root / "swap").mkdir()
    other = workspace.root / "swap" / "model.onnx"
    other.write_bytes(b"another model, not the one export checked")
    subprocess.run(
        [sys.executable, "-c", SWAP, workspace.tracking_uri, run_id, str(other)],
        cwd=workspace.root,
        check=True,
        capture_output=True,
    )
    swapped = workspace.client().get_run(run_id).data.tags
    assert swapped["onnx.sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()  # the swap took place

    assert workspace.cli("register", "--onnx-sha256", published) == 1
    message = capsys.readouterr().err
    assert f"not the {published} export's job published: the file was replaced after export" in message
    assert registered_versions(workspace) == []
    assert not (workspace.outputs / "registered.json").exists()


@pytest.mark.system
def test_a_rewritten_digest_tag_alone_is_refused(exported, capsys):
    workspace = exported  # validate, train, evaluate, gate and export passed
    published = hashlib.sha256((workspace.outputs / "model.onnx").read_bytes()).hexdigest()
    run_id = json.loads((workspace.outputs / "run.json").read_text())["run_id"]
    workspace.client().set_tag(run_id, "onnx.sha256", "0" * 64)
    assert workspace.cli("register", "--onnx-sha256", published) == 1
    assert "the tag was rewritten" in capsys.readouterr().err
    assert workspace.cli("register", "--onnx-sha256", "not-a-digest") == 1
    assert "is not a SHA-256" in capsys.readouterr().err
    assert registered_versions(workspace) == []


@pytest.mark.system
def test_a_run_is_registered_only_from_the_ref_it_was_trained_on(workspace, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_REF", "refs/heads/feature")
    for stage in ("validate", "train", "evaluate", "gate", "export"):
        assert workspace.cli(stage) == 0
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")
    assert workspace.cli("register") == 1
    assert "trained from refs/heads/feature but is being registered from refs/heads/main" in capsys.readouterr().err


@pytest.mark.system
def test_a_changed_data_file_stops_the_stages_after_train(workspace, capsys):
    """A run logs its test rows' digest, not the rows (real data, readable by whoever reads runs): the
    stages after train re-derive them from the data file and refuse one the run was not trained on."""
    for stage in ("validate", "train"):
        assert workspace.cli(stage) == 0
    settings = configuration.load(workspace.config)
    frame = pd.read_csv(settings.data_path)
    frame.iloc[::-1].to_csv(settings.data_path, index=False)  # the same rows in another order: another split
    assert workspace.cli("evaluate") == 2
    assert "is not the file run" in capsys.readouterr().err
    run_id = json.loads((workspace.outputs / "run.json").read_text())["run_id"]
    assert "stage.evaluate" not in workspace.client().get_run(run_id).data.tags
