"""A user's own table through the whole pipeline, as a new user brings it: awkward column names, CSV
options, missing values and string labels; and a Parquet file whose config `init-config` writes.

Each ends with the exported model answering /predict by the user's own column names, checked
against onnxruntime fed by position (not through the project's own name mapping).
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import SLUG, cli, run

# Every kind of name the issue lists: spaces, '-', '/', '.', unicode, a leading digit, names that
# differ only in case, and a name the ONNX graph already uses for an output.
AWKWARD = ["hours per week", "work-class", "fnlwgt/1000", "edu.num", "Größe", "1st-score", "Score", "score", "label"]

SERVE = """
import json, sys
from pathlib import Path
import numpy as np
import onnxruntime as ort
from fastapi.testclient import TestClient
from credit_model.serving.app import create_app
from credit_model.serving.settings import Settings

model, records = sys.argv[1], json.loads(sys.argv[2])
with TestClient(create_app(Settings(model_path=Path(model)))) as client:
    response = client.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    metadata = client.get("/metadata").json()
session = ort.InferenceSession(model)
names = list(records[0])  # the ONNX inputs are the features in file order: fed by position here
feeds = {}
for node, name in zip(session.get_inputs(), names, strict=True):
    values = [row[name] for row in records]
    if node.type == "tensor(float)":
        feeds[node.name] = np.array([np.nan if v is None else v for v in values], np.float32).reshape(-1, 1)
    else:
        feeds[node.name] = np.array(["missing" if v is None else v for v in values], object).reshape(-1, 1)
outputs = session.run(None, feeds)
print(json.dumps({"served": response.json(), "direct": [o.tolist() for o in outputs], "metadata": metadata,
                  "inputs": [node.name for node in session.get_inputs()]}))
"""


def awkward_table(rows: int, seed: int) -> pd.DataFrame:
    """A binary income table whose label depends on a few columns, with nulls and stray spaces."""
    rng = np.random.default_rng(seed)
    hours = rng.normal(40, 10, rows).round()
    work = rng.choice([" Private", "Self-emp ", " State-gov "], rows)
    education = rng.integers(1, 16, rows).astype(float)
    score = rng.normal(0, 1, rows)
    logit = 0.08 * (hours - 40) + 0.35 * (education - 8) + 0.8 * score + np.where(work == " Private", 0.0, 0.7)
    frame = pd.DataFrame(
        {
            "hours per week": hours,
            "work-class": work,
            "fnlwgt/1000": rng.uniform(10, 500, rows).round(3),
            "edu.num": education,
            "Größe": rng.normal(170, 10, rows).round(1),
            "1st-score": rng.normal(0, 1, rows).round(4),
            "Score": score.round(4),
            "score": rng.normal(0, 1, rows).round(4),
            "label": rng.choice(["a", "b", "c"], rows),  # a feature named like the model's output
            "sex": rng.choice(["Female", "Male"], rows),
            "income": np.where(rng.uniform(size=rows) < 1 / (1 + np.exp(-logit)), " >50K", "<=50K "),
        }
    )
    holes = rng.uniform(size=(rows, 2)) < 0.03
    frame["hours per week"] = frame["hours per week"].where(~holes[:, 0])
    frame["work-class"] = frame["work-class"].where(~holes[:, 1])
    return frame


def write_config(project, name: str, data: dict, task: str) -> str:
    settings = yaml.safe_load((project / "config.yaml").read_text())
    settings["task"] = task
    settings["data"] = data
    settings["gate"] = {"thresholds": {}, "no_regression": []}
    (project / name).write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))
    return name


def serve(project, records: list[dict]) -> dict:
    return json.loads(run(project, "-c", SERVE, str(project / "outputs" / "model.onnx"), json.dumps(records)).stdout)


def check_answers(answer: dict, records: list[dict], classification: bool) -> None:
    served, direct = answer["served"], answer["direct"]
    if classification:
        assert served["predictions"] == direct[0]
        np.testing.assert_allclose(served["probabilities"], direct[1], rtol=1e-6)
    else:
        np.testing.assert_allclose(served["predictions"], np.ravel(direct[0]), rtol=1e-6)
    assert [f["name"] for f in answer["metadata"]["input_schema"]] == list(records[0])
    assert all(re.fullmatch(r"[A-Za-z_]\w*", name, flags=re.ASCII) for name in answer["inputs"])


def records_of(frame: pd.DataFrame, target: str, rows: int) -> list[dict]:
    picked = frame.drop(columns=[target]).head(rows)
    return [
        {k: (None if pd.isna(v) else v.strip() if isinstance(v, str) else float(v)) for k, v in row.items()}
        for row in picked.to_dict(orient="records")
    ]


def test_awkward_names_csv_options_missing_values_and_string_labels(tmp_path, baked):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    frame = awkward_table(1500, seed=3)
    # As public tables come: ';' separated, '?' for unknown, spaces around the separators.
    text = frame.astype(object).where(frame.notna(), "?").to_csv(sep=";", index=False)
    (project / "data" / "income.csv").write_text(text.replace(";", " ; "))
    config = write_config(
        project,
        "config.income.yaml",
        {
            "path": "data/income.csv",
            "target": "income",
            "sensitive_features": ["sex"],
            "max_null_fraction": 0.06,
            "columns": {},
            "csv": {"separator": ";", "missing_values": ["?"]},
        },
        "binary",
    )
    result = cli(project, "pipeline", "--config", config)
    assert "pipeline done" in result.stderr

    registered = json.loads((project / "outputs" / "registered.json").read_text())
    assert registered["model_version"]
    schema = json.loads((project / "outputs" / "validation.json").read_text())
    assert schema["success"]

    records = records_of(frame, "income", 6)
    records[0]["hours per week"] = None  # missing values, sent as JSON null
    records[1]["work-class"] = None
    answer = serve(project, records)
    check_answers(answer, records, classification=True)
    assert set(answer["served"]["classes"]) == {">50K", "<=50K"}  # the labels' stray spaces are gone
    assert [f["name"] for f in answer["metadata"]["input_schema"]] == [c for c in frame.columns if c != "income"]
    assert {f["name"]: f["input"] for f in answer["metadata"]["input_schema"]}["label"] == "label_2"

    # `score` reads the same file with the same options, in chunks, and predicts as the server does.
    onnx = ("--onnx", "outputs/model.onnx")
    cli(project, "score", "--config", config, "--input", "data/income.csv", *onnx, "--chunk-rows", "400")
    scored = pd.read_parquet(project / "outputs" / "predictions.parquet")
    assert list(scored.columns[: frame.shape[1]]) == list(frame.columns) and len(scored) == len(frame)
    assert scored["prediction"][2:6].tolist() == answer["served"]["predictions"][2:6]
    assert scored["run_id"].unique().tolist() == [json.loads((project / "outputs" / "run.json").read_text())["run_id"]]


def test_parquet_with_a_boolean_target_from_init_config(tmp_path, baked):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    frame = awkward_table(1200, seed=5).drop(columns=["label"])
    frame["defaulted"] = frame.pop("income").str.strip() == ">50K"  # booleans as labels
    frame.to_parquet(project / "data" / "loans.parquet", index=False)

    cli(
        project, "init-config", "--data", "data/loans.parquet", "--target", "defaulted", "--output", "config.loans.yaml"
    )
    written = yaml.safe_load((project / "config.loans.yaml").read_text())
    assert written["task"] == "binary" and written["data"]["sensitive_features"] == []  # suggested, not switched on
    assert "sex" in (project / "config.loans.yaml").read_text()  # ... but suggested in a comment
    result = cli(project, "pipeline", "--config", "config.loans.yaml")
    assert "pipeline done" in result.stderr

    records = records_of(frame, "defaulted", 5)
    records[2]["work-class"] = None
    answer = serve(project, records)
    check_answers(answer, records, classification=True)
    assert set(answer["served"]["classes"]) == {"False", "True"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(income="<=50K"), "income: cannot be the target: it has only one class ('<=50K')"),
        (lambda f: f.rename(columns={"score": "Score"}), "repeated column name(s): 'Score' (2 times)"),
    ],
    ids=["one class", "repeated name"],
)
def test_tables_that_cannot_work_stop_before_training(tmp_path, baked, change, message):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    change(awkward_table(200, seed=1)).to_csv(project / "data" / "bad.csv", index=False)
    config = write_config(
        project, "config.bad.yaml", {"path": "data/bad.csv", "target": "income", "max_null_fraction": 0.1}, "binary"
    )
    result = cli(project, "pipeline", "--config", config, check=False)
    assert result.returncode in (1, 2) and message in result.stderr, result.stderr
    assert not (project / "outputs" / "run.json").exists()
