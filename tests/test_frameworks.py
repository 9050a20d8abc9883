"""One list of frameworks; PyTorch, Keras 3 (torch and TensorFlow backends) and EBM projects through the whole
chain to ONNX on a table as users' tables come (make_awkward), checked by the_whole_chain_holds.

The binary chains run in each bake's own venv, installed as a user installs it (test_user_install.py); the
regression and multiclass chains run here, in the template's shared venv."""

from __future__ import annotations

import ast
import json
import re
import shutil
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
    SHARED,
    SLUG,
    SOURCE,
    TEMPLATE,
    Interpreter,
    cli,
    framework_module,
    framework_modules,
    held_out_rows,
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


@pytest.mark.parametrize(("framework", "task"), [("pytorch", "regression"), ("keras", "multiclass")])
def test_framework_runs_the_whole_chain(tmp_path, baked, framework, task):
    """The other tasks' chains, in the shared venv. Every framework's binary chain but sklearn's runs in its
    bake's own venv, on the same awkward table and with the same checks: test_user_install.py."""
    project = shutil.copytree(baked(framework=framework, task=task), tmp_path / SLUG)
    make_awkward(project, task)
    cli(project, "pipeline")
    the_whole_chain_holds(project, framework, task, tmp_path)


def the_whole_chain_holds(
    project: Path, framework: str, task: str, tmp_path: Path, python: Interpreter = SHARED
) -> None:
    """What one `pipeline` run on make_awkward's table must show. `python` runs the project's own code here (the
    held-out rows, the native model, the server, the retraining): the shared venv's, or the bake's own .venv
    (test_user_install.py)."""
    only_the_frameworks_own_modules_were_baked(project, framework)
    first = run_id(project)
    metrics = store(project).get_run(first).data.metrics
    if framework in NETWORKS:
        loss_curves_agree_in_mlflow_and_tensorboard_and_decrease(project, first, tmp_path)
    explained_by_the_users_column_names(project, first, framework, tmp_path)
    test_rows = held_out_rows(project, first, tmp_path, python)
    schema, output = onnx_matches_the_native_model(project, test_rows, task, python)
    assert metrics["export.parity_max_abs_diff"] <= 1e-4  # what the export stage measured itself
    if framework == "ebm":
        served_as_onnxruntime(project, pd.read_parquet(test_rows), schema, output, tmp_path, python)
        explained_by_the_users_columns(project, test_rows, schema, python)
    if task == "binary":
        the_same_seed_gives_the_same_numbers(project, first, metrics, python)


def only_the_frameworks_own_modules_were_baked(project: Path, framework: str) -> None:
    """The hook kept this framework's modules (frameworks.MODULES) and deleted every other framework's."""
    own = set(framework_modules()[framework])
    for module in {module for modules in framework_modules().values() for module in modules}:
        baked_module = project / "src" / PACKAGE / framework_module(module).relative_to(SOURCE)
        kept = module in own
        assert baked_module.is_file() == kept, f"{baked_module}: {'missing' if kept else 'left'} in a {framework} bake"


def loss_curves_agree_in_mlflow_and_tensorboard_and_decrease(project: Path, first: str, tmp_path: Path) -> None:
    """The networks' training curves, in MLflow and in TensorBoard's event files: the same epochs and losses."""
    metrics = store(project).get_run(first).data.metrics
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


def explained_by_the_users_column_names(project: Path, first: str, framework: str, tmp_path: Path) -> None:
    """Explained over the user's own (awkward) column names, the categories masked as whole columns."""
    importance, _ = explained_run(store(project), first, tmp_path / "explained")
    assert importance["method"].startswith("permutation SHAP") and "income/month" in importance["features"]
    own = tmp_path / "explained" / "explain" / "model_importance.json"
    assert own.is_file() == (framework == "ebm")  # the glass-box model's own explanation, logged by explain
    if framework == "ebm":
        assert json.loads(own.read_text())["features"].keys() == importance["features"].keys()


def onnx_matches_the_native_model(project: Path, test_rows: Path, task: str, python: Interpreter) -> tuple[dict, list]:
    """The exported file takes the raw columns, by the input names its schema maps them to, and matches the
    native model (run by `python`) on the held-out rows, missing values included. Returns the file's schema and
    onnxruntime's outputs."""
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
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
    native = run(project, "-c", NATIVE, str(test_rows), python=python).stdout
    expected = np.asarray(json.loads(native))
    exported = output[1] if task != "regression" else output[0].reshape(-1)
    assert np.max(np.abs(exported - expected)) <= 1e-4
    return schema, output


def the_same_seed_gives_the_same_numbers(project: Path, first: str, metrics: dict, python: Interpreter) -> None:
    """`train` and `evaluate` again with the same seed: a new run, the same test and fairness metrics to the last
    digit."""
    cli(project, "train", python=python)
    cli(project, "evaluate", python=python)
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


def served_as_onnxruntime(
    project: Path, rows: pd.DataFrame, schema: dict, direct: list, tmp_path: Path, python: Interpreter
) -> None:
    """The project's real server (run by `python`) on the exported file answers the held-out rows, sent by the
    table's own column names with nulls for the missing values, exactly as onnxruntime did in-process."""
    records = json.loads(rows[[f["name"] for f in schema["features"]]].to_json(orient="records"))
    assert any(record["Purpose"] is None for record in records)
    port, log = free_port(), tmp_path / "server.log"
    command = [python.executable, "-m", f"{PACKAGE}.serving", "--model", str(project / "outputs" / "model.onnx")]
    process = start([*command, "--port", str(port)], log, env=python.environment(project), cwd=project)
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


def explained_by_the_users_columns(project: Path, test_rows: Path, schema: dict, python: Interpreter) -> None:
    """The EBM's own global explanation (computed by `python`): one share per column of the user's table, pairs
    included."""
    shares = json.loads(run(project, "-c", IMPORTANCE, str(test_rows), python=python).stdout)
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
