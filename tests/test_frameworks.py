"""One list of frameworks; PyTorch and Keras 3 (torch and TensorFlow backends) projects through the whole chain
to ONNX, like sklearn's."""

from __future__ import annotations

import ast
import json
import re
import shutil
import sys
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import (
    FRAMEWORKS,
    PACKAGE,
    SLUG,
    TEMPLATE,
    cli,
    framework_module,
    framework_modules,
    held_out_rows,
    project_env,
    run,
)
from processes import free_port, start, stop, wait_for_http
from test_explain import explained_run


def test_every_list_of_frameworks_names_the_same_ones(baked):
    """cookiecutter.json's choices = frameworks.MODULES (what the hook deletes by) = config's Name =
    pyproject's blocks."""
    modules = framework_modules()
    assert list(modules) == FRAMEWORKS, "cookiecutter.json's `framework` choices and frameworks.MODULES differ"
    names = run(
        baked(framework="sklearn"),
        "-c",
        "import json, typing; from credit_model.tabular import config, frameworks; "
        "print(json.dumps([typing.get_args(frameworks.Name), "
        "typing.get_args(config.Model.model_fields['framework'].annotation)]))",
    ).stdout
    assert json.loads(names) == [FRAMEWORKS, FRAMEWORKS], "frameworks.Name (config.yaml's choices) differs"
    pyproject = (TEMPLATE / "{{cookiecutter.project_slug}}" / "pyproject.toml").read_text()
    dependencies = pyproject[pyproject.index("dependencies = [") : pyproject.index("[project.optional-dependencies]")]
    blocks = re.findall(r'cookiecutter\.framework == "(\w+)"', dependencies)
    assert blocks == FRAMEWORKS, "pyproject.toml's dependency blocks"
    # The imported models' frameworks (kept in every bake) are defined the same way.
    for name, (own, *needs) in (modules | framework_modules("IMPORTED")).items():
        defined = ast.parse(framework_module(own).read_text())
        assert any(
            isinstance(node, ast.ClassDef)
            and any(isinstance(item, ast.Assign) and ast.unparse(item) == f"name = {name!r}" for item in node.body)
            for node in defined.body
        ), f"frameworks/{own}.py defines no class with name = {name!r}"
        assert all(framework_module(module).is_file() for module in needs)


def store(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def run_id(project) -> str:
    return json.loads((project / "outputs" / "run.json").read_text())["run_id"]


@pytest.mark.parametrize(
    ("framework", "task"),
    [
        ("pytorch", "binary"),
        ("keras", "binary"),
        ("tensorflow", "binary"),
        ("pytorch", "regression"),
        ("ebm", "binary"),
        ("keras", "multiclass"),
    ],
)
def test_framework_runs_the_whole_chain(tmp_path, baked, framework, task):
    project = shutil.copytree(baked(framework=framework, task=task), tmp_path / SLUG)
    others = {module for modules in framework_modules().values() for module in modules} - set(
        framework_modules()[framework]
    )
    assert not any((project / "src" / PACKAGE / "frameworks" / f"{name}.py").exists() for name in others)
    make_awkward(project, task)
    cli(project, "pipeline")

    first = run_id(project)
    metrics = store(project).get_run(first).data.metrics
    if framework in NETWORKS:  # the networks' training curves, in MLflow and in TensorBoard's event files
        assert "epoch.train_loss" in metrics and "epoch.best" in metrics
        curves = tensorboard_losses(store(project), first, tmp_path / "tensorboard")
        for run_name, metric in (("loss_train", "epoch.train_loss"), ("loss_valid", "epoch.valid_loss")):
            steps, losses = zip(*curves[run_name], strict=True)
            history = store(project).get_metric_history(first, metric)
            assert list(steps) == list(range(len(history))) and len(steps) >= 2, f"{run_name}: epochs {steps}"
            assert list(losses) == pytest.approx([m.value for m in history], rel=1e-5), run_name
        train_loss = [loss for _, loss in curves["loss_train"]]
        valid_loss = [loss for _, loss in curves["loss_valid"]]
        assert train_loss[-1] < train_loss[0] and min(valid_loss) < valid_loss[0], curves
    # Explained over the user's own (awkward) column names, the categories masked as whole columns.
    importance, _ = explained_run(store(project), first, tmp_path / "explained")
    assert importance["method"].startswith("permutation SHAP") and "income/month" in importance["features"]
    own = tmp_path / "explained" / "explain" / "model_importance.json"
    assert own.is_file() == (framework == "ebm")  # the glass-box model's own explanation, logged by explain
    if framework == "ebm":
        assert json.loads(own.read_text())["features"].keys() == importance["features"].keys()

    # The exported file takes the raw columns, by the input names its schema maps them to, and
    # matches the native model on held-out rows (missing values included).
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
    test_rows = held_out_rows(project, first, tmp_path)
    rows = pd.read_parquet(test_rows)
    schema = json.loads(session.get_modelmeta().custom_metadata_map["mlops.schema"])
    assert {f["name"]: f["input"] for f in schema["features"]}["loan amount"] == "loan_amount"
    assert [f["input"] for f in schema["features"]] == [i.name for i in session.get_inputs()]
    assert rows["income/month"].isna().any() and rows["Purpose"].isna().any()
    feeds = {
        f["input"]: (
            rows[f["name"]].to_numpy(np.float32)
            if f["type"] == "number"
            else rows[f["name"]].astype(str).where(rows[f["name"]].notna(), "missing").to_numpy(object)
        ).reshape(-1, 1)
        for f in schema["features"]
    }
    output = session.run(None, feeds)
    native = run(project, "-c", NATIVE, test_rows).stdout
    expected = np.asarray(json.loads(native))
    exported = output[1] if task != "regression" else output[0].reshape(-1)
    assert np.max(np.abs(exported - expected)) <= 1e-4
    assert metrics["export.parity_max_abs_diff"] <= 1e-4
    if framework == "ebm":
        served_as_onnxruntime(project, rows, schema, output, tmp_path)
        explained_by_the_users_columns(project, test_rows, schema)

    if task == "binary":  # the same seed again: the same numbers, to the last digit
        cli(project, "train")
        cli(project, "evaluate")
        again = store(project).get_run(run_id(project)).data.metrics
        assert run_id(project) != first
        assert {k: v for k, v in again.items() if k.startswith(("test.", "fairness."))} == {
            k: v for k, v in metrics.items() if k.startswith(("test.", "fairness."))
        }


# The frameworks that train a network epoch by epoch and write TensorBoard event files.
NETWORKS = ("pytorch", "keras", "tensorflow")


def tensorboard_losses(client: MlflowClient, run: str, folder) -> dict[str, list[tuple[int, float]]]:
    """The run's logged `tensorboard/` folder read back as TensorBoard reads it: (epoch, loss) per curve.

    One folder per curve (`loss_train`, `loss_valid`: torch's SummaryWriter.add_scalars layout, which the
    TensorFlow writer copies); TensorBoard's loader turns either backend's scalars into tensors."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    folder.mkdir(parents=True, exist_ok=True)
    logs = Path(client.download_artifacts(run, "tensorboard", str(folder)))
    curves = {}
    for curve in ("loss_train", "loss_valid"):
        events = EventAccumulator(str(logs / curve))
        events.Reload()
        assert "loss" in events.Tags()["tensors"], f"no loss scalars in {logs / curve}: {events.Tags()}"
        curves[curve] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events.Tensors("loss")]
    return curves


def served_as_onnxruntime(project, rows: pd.DataFrame, schema: dict, direct: list, tmp_path) -> None:
    """The project's real server on the exported file answers the held-out rows, sent by the table's
    own column names with nulls for the missing values, exactly as onnxruntime did in-process."""
    records = json.loads(rows[[f["name"] for f in schema["features"]]].to_json(orient="records"))
    assert any(record["Purpose"] is None for record in records)
    port, log = free_port(), tmp_path / "server.log"
    command = [sys.executable, "-m", f"{PACKAGE}.serving", "--model", str(project / "outputs" / "model.onnx")]
    process = start([*command, "--port", str(port)], log, env=project_env(project), cwd=project)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=60, process=process, log=log)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"records": records}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
    finally:
        stop(process)
    assert answer["predictions"] == direct[0].tolist()
    np.testing.assert_allclose(answer["probabilities"], direct[1], atol=1e-6)


def explained_by_the_users_columns(project, test_rows: str, schema: dict) -> None:
    """The EBM's own global explanation: one share per column of the user's table, pairs included."""
    shares = json.loads(run(project, "-c", IMPORTANCE, test_rows).stdout)
    columns = [f["name"] for f in schema["features"]]
    assert list(shares["folded"]) == columns  # "loan amount", "income/month", ...: the table's names
    assert abs(sum(shares["folded"].values()) - 1) < 1e-9 and min(shares["folded"].values()) > 0
    # The pairs' importance went to their columns: without it, the main effects alone sum to less than 1.
    assert shares["pairs"] > 0 and sum(shares["main_effects"].values()) < 1 - 1e-3


# Names that are not identifiers, one differing from another only in case, as users' tables have them.
RENAMED = {"income": "income/month", "loan_amount": "loan amount", "credit_history_years": "credit-history.years"}
RENAMED |= {"purpose": "Purpose", "employment": "1st employment"}


def make_awkward(project, task) -> None:
    """The bundled table as users' tables come: awkward names and a few missing values."""
    path = project / "data" / f"credit_{task}.csv"
    frame = pd.read_csv(path).rename(columns=RENAMED)
    rng = np.random.default_rng(0)
    for column in ("income/month", "Purpose"):
        frame.loc[rng.uniform(size=len(frame)) < 0.02, column] = None
    frame.to_csv(path, index=False)
    settings = yaml.safe_load((project / "config.yaml").read_text())
    settings["data"].update(columns={}, max_null_fraction=0.05)
    (project / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))


# Native predictions through the project's own framework module, as the export stage computes them.
NATIVE = """
import json, sys
import pandas as pd
from credit_model import config
from credit_model.tabular.dataio import data
from credit_model.tabular.pure.predictions import ClassPredictions
from credit_model.tabular.stages.context import attach
settings = config.load(__import__("pathlib").Path("config.yaml"))
context = attach(settings, None)
model = context.framework.load_model(context.model_uri)
rows = data.features(pd.read_parquet(sys.argv[1]), context.schema)
predicted = context.framework.predict(model, rows)
out = predicted.probabilities if isinstance(predicted, ClassPredictions) else predicted.values
print(json.dumps(out.tolist()))
"""

# The EBM's global_importance on the held-out rows given by the table's own column names, and its
# main effects' shares of the same total (the terms with one column) for comparison.
IMPORTANCE = """
import json, sys
import pandas as pd
from credit_model import config
from credit_model.tabular.dataio import data
from credit_model.tabular.stages.context import attach
context = attach(config.load(__import__("pathlib").Path("config.yaml")), None)
model = context.framework.load_model(context.model_uri)
rows = data.features(pd.read_parquet(sys.argv[1]), context.schema)
rows.columns = context.schema.features
terms = list(zip(model.term_features_, model.term_importances()))
whole = sum(float(importance) for _, importance in terms)
print(json.dumps({
    "folded": context.framework.global_importance(model, rows),
    "main_effects": {context.schema.features[t[0]]: float(i) / whole for t, i in terms if len(t) == 1},
    "pairs": sum(1 for t, _ in terms if len(t) == 2),
}))
"""
