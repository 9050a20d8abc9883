"""The explain stage on real runs: its artifacts in the user's column names, and the importance gate.

The default project's pipeline (conftest's `project_with_model`) is explained with shap's TreeExplainer;
the whole-chain checks of test_frameworks.py (run there and, for the binary chains, in test_user_install.py)
check the networks' and the EBM's (model-agnostic) explanations with `explained_run` below. The numbers are
checked against the exported model itself, not only for shape.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from conftest import SLUG, cli, held_out_rows


def store(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def last_run(project) -> str:
    return json.loads((project / "outputs" / "run.json").read_text())["run_id"]


def explained_run(client: MlflowClient, run_id: str, tmp_path) -> tuple[dict, dict]:
    """importance.json and local.json of a run, checked for what every framework's explanation must be."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    run = client.get_run(run_id)
    assert run.data.tags["stage.explain"] == "done"
    # A glass-box model (the EBM) adds its own explanation, model_importance.json, beside these.
    assert {a.path for a in client.list_artifacts(run_id, "explain")} - {"explain/model_importance.json"} == {
        "explain/importance.json",
        "explain/local.json",
        "explain/importance.png",
    }
    folder = Path(client.download_artifacts(run_id, "explain", str(tmp_path)))
    importance = json.loads((folder / "importance.json").read_text())
    local = json.loads((folder / "local.json").read_text())
    assert (folder / "importance.png").read_bytes()[:4] == b"\x89PNG"
    described = json.loads(Path(client.download_artifacts(run_id, "schema.json", str(tmp_path))).read_text())
    described = described["features"]
    # One share per user column (categories folded back), summing to 1, each also a metric by input name.
    assert set(importance["features"]) == {feature["name"] for feature in described}
    assert abs(sum(importance["features"].values()) - 1.0) < 1e-9
    assert all(share >= 0 for share in importance["features"].values())
    for feature in described:
        assert run.data.metrics[f"importance.{feature['input']}"] == importance["features"][feature["name"]]
    assert local["rows"] and importance["rows"] > len(local["rows"])
    for row in local["rows"]:  # each row's contributions add up to the output explained
        assert set(row["contributions"]) == set(row["values"]) == set(importance["features"])
        assert abs(row["base"] + sum(row["contributions"].values()) - row["explained"]) < 1e-9
    return importance, local


def test_the_default_pipeline_explains_the_model_it_exports(project_with_model, tmp_path):
    client = store(project_with_model)
    run_id = last_run(project_with_model)
    importance, local = explained_run(client, run_id, tmp_path)
    assert importance["method"].startswith("shap.TreeExplainer")
    assert importance["outputs"] == ["log-odds of 1"]  # the class label as the model holds it

    # The explained output of each local row is the exported model's log-odds for that held-out row.
    rows = pd.read_parquet(held_out_rows(project_with_model, run_id, tmp_path))
    session = ort.InferenceSession(str(project_with_model / "outputs" / "model.onnx"))
    schema = json.loads(session.get_modelmeta().custom_metadata_map["mlops.schema"])
    chosen = rows.loc[[row["row"] for row in local["rows"]]]
    feeds = {
        f["input"]: (
            chosen[f["name"]].to_numpy(np.float32) if f["type"] == "number" else chosen[f["name"]].to_numpy(object)
        ).reshape(-1, 1)
        for f in schema["features"]
    }
    probability = session.run(["probabilities"], feeds)[0][:, 1].astype(np.float64)
    log_odds = np.log(probability / (1 - probability))
    np.testing.assert_allclose([row["explained"] for row in local["rows"]], log_odds, atol=1e-4)
    assert all(row["values"]["sex"] == value for row, value in zip(local["rows"], chosen["sex"], strict=True))


def test_an_importance_gate_out_of_reach_fails_and_nothing_is_registered(project_with_model, tmp_path):
    project = shutil.copytree(project_with_model, tmp_path / SLUG)
    registered = {v.version for v in store(project).search_model_versions(f"name = '{SLUG}'")}
    settings = yaml.safe_load((project / "config.yaml").read_text())
    columns = len(settings["data"]["columns"]) - 1  # every feature: a sensitive one is always in the top k
    settings["explain"] = {"gate": {"forbidden_top_k": columns, "max_share": {"sex": 0.001, "income": 1.0}}}
    (project / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))

    failed = cli(project, "pipeline", check=False)
    assert failed.returncode != 0
    assert "gate failed" in failed.stderr and "nothing was registered" in failed.stderr

    client = store(project)
    run = client.get_run(last_run(project))
    assert run.info.run_id != last_run(project_with_model)
    assert run.data.tags["gate.verdict"] == "failed" and "model.version" not in run.data.tags
    assert {v.version for v in client.search_model_versions(f"name = '{SLUG}'")} == registered
    sex, income = run.data.metrics["importance.sex"], run.data.metrics["importance.income"]
    report = (project / "outputs" / "gate.md").read_text()
    assert f"| importance share of sex | {sex:.4f} | <= 0.001 | n/a | **FAIL** |" in report
    assert f"| importance share of income | {income:.4f} | <= 1 | n/a | pass |" in report
    age_group = run.data.metrics["importance.age_group"]
    assert f"| importance share of age_group | {age_group:.4f} | not in the top {columns} (ranks " in report
