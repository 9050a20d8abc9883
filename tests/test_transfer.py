"""Transfer learning: a network trained from a registered base beats one trained from scratch on few rows.

Per neural-network framework, in a copy of its bake: a base is trained by `train` on 4,000 rows of
the bundled credit book (target: approved) and registered with MlflowClient. The target task is a
related one on 1,000 other rows: a stricter lender who approves only the best half of the scores
(the generator's risk grade 0). Its config keeps 20% of them for training (200 rows, 20 of them for
early stopping) and 800 held out. `train --init-from <registry reference>` and `train` from scratch
run on the same rows with the same settings; the project's own code scores both on the same 800
held-out rows. PyTorch freezes the trunk (only the head trains, from the registered alias); Keras
fine-tunes the whole network at the lower rate (from the registered version number).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml

from conftest import PACKAGE, SLUG, cli, run

BASE_ROWS = 4000
# Held out of the target rows: what the comparison is measured on.
TARGET_TEST_SIZE = 0.8
# Seen (800 held-out rows): ROC AUC 0.807 -> 0.913 and accuracy 0.711 -> 0.820 (PyTorch, frozen trunk); ROC AUC
# 0.807 -> 0.913 and accuracy 0.743 -> 0.818 (Keras, fine-tuned). Asked: under half of the smallest gain.
MIN_GAIN = {"roc_auc": 0.03, "accuracy": 0.03}

DATA = f"""
import sys
from pathlib import Path
from {PACKAGE}.tabular.dataio.sample_data import generate

frame = generate()
base = frame.iloc[:{BASE_ROWS}].drop(columns=["risk_grade", "interest_rate"])
target = frame.iloc[{BASE_ROWS}:].drop(columns=["approved", "interest_rate"])
target = target.assign(approved=(target.pop("risk_grade") == 0).astype(int))
base.to_csv("data/base.csv", index=False)
target.to_csv("data/target.csv", index=False)
"""

# Both runs' models, read back by the project's own code, on their held-out rows (the same rows: same split seed).
SCORE = f"""
import json, sys
from pathlib import Path
from {PACKAGE} import config
from {PACKAGE}.tabular.dataio import data
from {PACKAGE}.tabular.pure import metrics, predictions
from {PACKAGE}.tabular.stages.context import attach

settings = config.load(Path("target.yaml"), data=Path("data/target.csv"))
scores = {{}}
for run_id in sys.argv[1:]:
    context = attach(settings, run_id)
    rows = context.test_rows()
    model = context.framework.load_model(context.model_uri)
    features = data.features(rows, context.schema)
    predicted = predictions.in_chunks(lambda part: context.framework.predict(model, part), features)
    y_true = data.target(rows, context.schema).to_numpy()
    scores[run_id] = metrics.compute(context.schema.task, y_true, predicted, context.classes) | {{"rows": len(rows)}}
print(json.dumps(scores))
"""

CASES = {
    # framework: (how the base is referenced, model.params for the target runs)
    "pytorch": ("models:/{name}@base", {"freeze": True}),
    "keras": ("models:/{name}/{version}", {"freeze": False, "fine_tune_lr_factor": 0.1}),
}


def target_config(project: Path, params: dict) -> None:
    """target.yaml beside config.yaml: few training rows, small batches (200 rows are a few steps of 256)."""
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["split"]["test_size"] = TARGET_TEST_SIZE
    config["model"]["params"] |= {"batch_size": 32, "epochs": 40, "patience": 8} | params
    (project / "target.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def last_run(project: Path) -> str:
    return json.loads((project / "outputs" / "run.json").read_text())["run_id"]


@pytest.mark.parametrize("framework", list(CASES))
def test_a_registered_base_trains_a_better_model_on_few_rows(baked, tmp_path, monkeypatch, framework):
    reference, params = CASES[framework]
    project = shutil.copytree(baked(framework=framework), tmp_path / SLUG)
    run(project, "-c", DATA)
    target_config(project, params)

    cli(project, "train", "--data", "data/base.csv")
    base_run = last_run(project)
    store = f"sqlite:///{project / 'mlflow.db'}"
    # The registry's SQL store looks the logged model up through the default tracking URI.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    client = mlflow.MlflowClient(store, registry_uri=store)
    base_model = client.get_run(base_run).data.tags["model.uri"]
    client.create_registered_model(SLUG)
    model_id = base_model.removeprefix("models:/")
    # Tagged as `register` tags a version CI registered on main: only such a version is a base by default.
    trusted = {"run_id": base_run, "source_ref": "refs/heads/main", "gate.verdict": "passed", "export.parity": "passed"}
    trusted["onnx.sha256"] = "0" * 64
    version = client.create_model_version(SLUG, base_model, base_run, trusted, model_id=model_id).version
    client.set_registered_model_alias(SLUG, "base", version)
    reference = reference.format(name=SLUG, version=version)

    target = ("train", "--config", "target.yaml", "--data", "data/target.csv")
    cli(project, *target)
    scratch = last_run(project)
    cli(project, *target, "--init-from", reference)
    transferred = last_run(project)

    # The chain in the MLflow UI: where the new model started, as params and tags.
    lineage = {
        "init_from.uri": reference,
        "init_from.model_uri": base_model,
        "init_from.version": str(version),
        "init_from.run_id": base_run,
    }
    recorded = client.get_run(transferred).data
    assert {key: recorded.tags.get(key) for key in lineage} == lineage
    assert {key: recorded.params.get(key) for key in lineage} == lineage
    assert not any(key.startswith("init_from.") for key in client.get_run(scratch).data.tags)

    scores = json.loads(run(project, "-c", SCORE, scratch, transferred).stdout)
    held_out = scores[transferred]["rows"]
    before, after = scores[scratch], scores[transferred]
    figures = (f"{m} {before[m]:.3f} from scratch, {after[m]:.3f} from the base" for m in MIN_GAIN)
    mode = "frozen trunk" if params["freeze"] else "fine-tuned"
    print(f"\n{framework} ({mode}), {held_out} held-out rows: {'; '.join(figures)}")
    assert held_out == scores[scratch]["rows"] == 800
    for metric, gain in MIN_GAIN.items():
        assert scores[transferred][metric] >= scores[scratch][metric] + gain, (metric, scores)
