"""Differential privacy, executed on the PyTorch bake: DP-SGD training through the gate, export and register,
and the OpenDP group statistics of the training rows.

One DP training serves every test here (the module's fixture): the pipeline with an epsilon budget
below what DP-SGD spends (it must stop at the gate and register nothing), then, on the same run, the
shipped gate, export and register.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import SLUG, cli, held_out_rows, run

TARGET_EPSILON, TARGET_DELTA, REPORT_EPSILON, EPOCHS = 3.0, 1e-5, 1.0, 5
STRICT = "    privacy.epsilon: {max: 0.5}\n"

# In the project, one process (each costs seconds of imports): gate, export and register as the CLI runs
# them, then the logged model's probabilities on the held-out rows and the names in its state dict.
FINISH = """
import json, sys
import pandas as pd, torch
from pathlib import Path
from credit_model import config
from credit_model.tabular.dataio import data
from credit_model.tabular.frameworks import model_files
from credit_model.tabular import stages
from credit_model.tabular.stages.context import attach
settings = config.load(Path("config.yaml"))
for stage in ("gate", "export", "register"):
    stages.STAGES[stage].run(settings)
context = attach(settings, None)
model = context.framework.load_model(context.model_uri)
rows = data.features(pd.read_parquet(sys.argv[1]), context.schema)
weights = torch.load(model_files(context.model_uri) / "state_dict.pt", weights_only=True)
print("\\n" + json.dumps({"probabilities": context.framework.predict(model, rows).probabilities.tolist(),
                  "state_dict": sorted(weights)}))
"""


def store(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def run_id(project) -> str:
    return json.loads((project / "outputs" / "run.json").read_text())["run_id"]


def configure(project, strict: bool) -> None:
    config = (project / "config.yaml").read_text()
    config = config.replace("  thresholds:\n", "  thresholds:\n" + STRICT) if strict else config.replace(STRICT, "")
    (project / "config.yaml").write_text(config)


@pytest.fixture(scope="module")
def private(baked, tmp_path_factory):
    project = shutil.copytree(baked(framework="pytorch"), tmp_path_factory.mktemp("privacy") / SLUG)
    config = (project / "config.yaml").read_text()
    edits = [
        ("  enabled: false\n  target_epsilon", "  enabled: true\n  target_epsilon"),
        ("  report_epsilon:\n", f"  report_epsilon: {REPORT_EPSILON}\n"),
        ("    epochs: 25\n", f"    epochs: {EPOCHS}\n"),
    ]
    for old, new in edits:
        assert config.count(old) == 1, old
        config = config.replace(old, new)
    (project / "config.yaml").write_text(config)
    configure(project, strict=True)
    strict = cli(project, "pipeline", check=False)  # validate, train, evaluate, gate: stops there
    registered_after_strict = store(project).search_registered_models()
    configure(project, strict=False)
    test_rows = str(held_out_rows(project, run_id(project), project))
    native = json.loads(run(project, "-c", FINISH, test_rows).stdout.splitlines()[-1])
    return project, strict, registered_after_strict, native, test_rows


def test_dp_training_spends_at_most_its_budget_and_exports_the_plain_network(private):
    project, _, _, native, test_rows = private
    run_data = store(project).get_run(run_id(project)).data
    assert 0 < run_data.metrics["privacy.epsilon"] <= TARGET_EPSILON
    assert run_data.metrics["privacy.delta"] == TARGET_DELTA
    assert run_data.params["privacy.enabled"] == "True"
    assert run_data.metrics["epoch.best"] == EPOCHS - 1  # every epoch ran: no early stopping under DP
    gate_report = (project / "outputs" / "gate.md").read_text()
    assert "| privacy.delta | 1e-05 | <= 1e-05 (privacy.target_delta, privacy.enabled) |" in gate_report
    assert run_data.tags["export.parity"] == "passed" and run_data.metrics["export.parity_max_abs_diff"] <= 1e-4

    # The exported ONNX file and the logged weights, recomputed here: the plain network, no Opacus wrapper.
    assert native["state_dict"] and all(name.startswith("body.") for name in native["state_dict"])
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
    schema = json.loads(session.get_modelmeta().custom_metadata_map["mlops.schema"])
    rows = pd.read_parquet(test_rows)
    feeds = {
        f["input"]: (
            rows[f["name"]].to_numpy(np.float32) if f["type"] == "number" else rows[f["name"]].to_numpy(object)
        ).reshape(-1, 1)
        for f in schema["features"]
    }
    probabilities = session.run(["probabilities"], feeds)[0]
    assert np.max(np.abs(probabilities - np.asarray(native["probabilities"]))) <= 1e-4


def test_a_budget_below_the_spent_epsilon_fails_the_gate_and_registers_nothing(private):
    project, strict, registered_after_strict, _, _ = private
    assert strict.returncode != 0
    assert "gate failed (privacy.epsilon); nothing was registered" in strict.stderr
    assert "| privacy.epsilon |" in strict.stdout and "| <= 0.5 | n/a | **FAIL** |" in strict.stdout
    assert registered_after_strict == []
    # The same run under the shipped gate: registered.
    assert json.loads((project / "outputs" / "registered.json").read_text())["model_version"] == "1"


def test_dp_group_statistics_are_noisy_counts_near_the_exact_ones(private, tmp_path):
    project, _, _, _, test_rows = private
    released = json.loads(
        Path(store(project).download_artifacts(run_id(project), "privacy/group_stats.json", str(tmp_path))).read_text()
    )
    # The training rows: the table less the held-out rows the run logged.
    table = pd.read_csv(project / "data" / "credit_binary.csv")
    held_out = pd.read_parquet(test_rows)
    assert released["epsilon"] == REPORT_EPSILON
    assert sum(feature["epsilon"] for feature in released["features"].values()) == pytest.approx(REPORT_EPSILON)
    differences = []
    for feature in ("sex", "age_group"):
        exact = table.groupby([feature, "approved"]).size() - held_out.groupby([feature, "approved"]).size()
        groups = released["features"][feature]["groups"]
        assert set(groups) == {*table[feature].unique(), "(other)"}
        for (group, label), count in exact.items():
            differences.append(groups[group]["label_counts"][str(label)] - count)
    # Each count has discrete Laplace noise of scale 2 (epsilon 0.5 per feature): |noise| > 30 has
    # probability about 3e-7 per count; all 12 counts exact, about 5e-8.
    assert max(abs(d) for d in differences) <= 30
    assert any(differences)
