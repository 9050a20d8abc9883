"""The `tune` stage's parts that need no Ray: a trial's training and scoring, how trials are recorded as
child runs and the best one chosen, and when `train` continues a saved search. Ray Tune itself runs
in the template's tests (it is the optional extra `ray`, not in requirements.lock)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import lineage, tracking
from {{ cookiecutter.package_name }}.errors import CheckFailed
from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular.dataio import data
from {{ cookiecutter.package_name }}.tabular.pure import metrics
from {{ cookiecutter.package_name }}.tabular.stages import tune
from {{ cookiecutter.package_name }}.tabular.training import tuned, tuning

PROJECT = Path(__file__).resolve().parents[3]
# A quick model of this project's framework: the trial's mechanics are under test, not the model's quality.
QUICK = {"sklearn": {"max_iter": 5}, "ebm": {"max_rounds": 5, "interactions": 0}}.get(
    configuration.load(PROJECT / "config.yaml").model.framework, {"epochs": 1}
)


def trial(rate: float, score: float | None, error: str | None = None) -> tuning.Trial:
    now = time.time()
    scores = {} if score is None else {"roc_auc": score}
    return tuning.Trial(params={"learning_rate": rate}, scores=scores, started=now - 1, ended=now, error=error)


def test_trials_are_child_runs_of_the_pipelines_run_and_the_best_follows_the_mode(workspace):
    settings = configuration.load(workspace.config)
    client = tracking.connect(settings)
    experiment = tracking.experiment_id(settings, client)
    parent = client.create_run(experiment).info.run_id
    trials = [trial(0.1, 0.8), trial(0.2, 0.9), trial(0.3, None, "ValueError: learning_rate too high")]

    children = [client.get_run(i) for i in tune.record_trials(client, experiment, parent, trials)]
    assert [c.data.tags[lineage.PARENT_RUN] for c in children] == [parent] * 3
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED", "FAILED"]
    assert [c.data.params["model.learning_rate"] for c in children] == ["0.1", "0.2", "0.3"]
    assert children[1].data.metrics["validation.roc_auc"] == 0.9
    assert children[2].data.tags["tune.error"] == "ValueError: learning_rate too high"

    assert tune.best(trials, "roc_auc", "max").params == {"learning_rate": 0.2}
    assert tune.best(trials, "roc_auc", "min").params == {"learning_rate": 0.1}
    with pytest.raises(CheckFailed, match="learning_rate too high"):
        tune.best(trials[2:], "roc_auc", "max")


def test_a_trial_trains_the_framework_and_scores_it_on_the_validation_rows(workspace):
    settings = configuration.load(workspace.config)
    frame = data.read_table(settings.data_path, settings.data.csv)
    schema = data.schema(settings, frame)
    rows = data.split(frame, schema, 0.2, 0)
    metric, mode = tuning.metric_and_mode(settings)
    scores = tuning.score(settings, QUICK, rows.train.head(800), rows.test.head(300), schema)
    assert metric in scores
    assert mode == ("min" if metrics.lower_is_better(metric) else "max")


def test_train_continues_a_saved_search_only_while_it_holds(workspace):
    space = {"learning_rate": {"type": "uniform", "low": 0.01, "high": 0.1}}
    workspace.edit_config(lambda settings: settings.update(tune={"enabled": True, "trials": 2, "space": space}))
    settings = configuration.load(workspace.config)
    client = tracking.connect(settings)
    experiment = tracking.experiment_id(settings, client)
    parent = client.create_run(experiment).info.run_id
    saved = tune.Tuned(run_id=parent, best_params={"learning_rate": 0.05}, metric="m", value=1.0)
    tune.save(settings, saved, experiment)

    assert tuned.for_training(settings) == saved
    changed = settings.model_copy(update={"tune": settings.tune.model_copy(update={"trials": 3})})
    assert tune.current(changed) is None  # another search was asked for
    client.set_tag(parent, lineage.stage_tag("train"), lineage.DONE)
    assert tune.current(settings) is None  # the run holds a model: the next train searches again
    off = settings.model_copy(update={"tune": settings.tune.model_copy(update={"enabled": False})})
    assert tuned.for_training(off) is None
