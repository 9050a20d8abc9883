"""The reinforcement-learning stages through the CLI: PPO trained once (module scope), then each stage's promise;
and what validate refuses before anything trains."""

from __future__ import annotations

import json

import onnx
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.config import load
from {{ cookiecutter.package_name }}.rl.pure import episodes, onnx_policy
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.settings import Settings


@pytest.mark.system
class TestTrainedPolicy:
    """One PPO run (validate, train, evaluate: the `evaluated_run` fixture), judged, exported, registered, served."""

    def test_train_logs_each_iterations_return_and_the_checkpoint(self, evaluated_run):
        settings = load(evaluated_run.config).rl
        run_id = json.loads((evaluated_run.outputs / lineage.RUN_FILE).read_text())["run_id"]
        client = evaluated_run.client()
        history = client.get_metric_history(run_id, "train.episode_return_mean")
        assert [point.step for point in history] == list(range(settings.iterations))
        assert client.list_artifacts(run_id, lineage.RL_CHECKPOINT_FOLDER), "RLlib checkpoint not logged"
        scores = json.loads((evaluated_run.outputs / lineage.EVALUATION_FILE).read_text())
        assert scores["evaluate.episodes"] == settings.evaluation_episodes
        assert scores["evaluate.return_min"] <= scores["evaluate.return_mean"] <= scores["evaluate.return_max"]

    def test_an_unreachable_return_fails_the_gate_and_nothing_is_registered(self, evaluated_run):
        thresholds = load(evaluated_run.config).gate.thresholds
        evaluated_run.edit_config(lambda c: c["gate"]["thresholds"].update({"evaluate.return_mean": {"min": 1e9}}))
        try:
            assert evaluated_run.cli("gate") == 1
            assert "evaluate.return_mean" in (evaluated_run.outputs / lineage.GATE_REPORT_FILE).read_text()
            assert evaluated_run.cli("export") == 0  # export judges parity only; register refuses the failed gate
            assert evaluated_run.cli("register") == 1
            name = load(evaluated_run.config).tracking.model_name
            assert not evaluated_run.client().search_model_versions(f"name = '{name}'")
        finally:
            restored = {name: bound.model_dump(exclude_none=True) for name, bound in thresholds.items()}
            evaluated_run.edit_config(lambda c: c["gate"].update(thresholds=restored))

    def test_served_actions_are_onnxruntimes_greedy_actions(self, evaluated_run):
        assert evaluated_run.cli("gate") == 0
        assert evaluated_run.cli("export") == 0
        assert evaluated_run.cli("register") == 0
        settings = load(evaluated_run.config).rl
        model = onnx.load(evaluated_run.outputs / lineage.ONNX_FILE)
        observations = episodes.observations(
            settings, lambda rows: onnx_policy.greedy(model, rows)[0], 64, seed=settings.seed + 1
        )
        expected, _ = onnx_policy.greedy(model, observations)
        rows = [{f"obs_{i}": float(value) for i, value in enumerate(row)} for row in observations]
        with TestClient(create_app(Settings(model_path=evaluated_run.outputs / lineage.ONNX_FILE))) as client:
            response = client.post("/predict", json={"records": rows})
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == expected.tolist()
        assert set(expected.tolist()) <= set(range(settings.actions))


def test_validate_refuses_an_environment_that_does_not_match_the_declaration(workspace, capsys):
    workspace.edit_config(lambda c: c["rl"].update(actions=3))
    assert workspace.cli("validate") == 1
    assert "the environment has 2 actions, rl.actions says 3" in capsys.readouterr().err
    assert not (workspace.outputs / lineage.RUN_FILE).exists()


def test_ppo_settings_are_checked_before_anything_runs(workspace, capsys):
    workspace.edit_config(lambda c: c["rl"].update(observation_low=[0.0]))
    assert workspace.cli("validate") == 2
    assert "observation_low has 1 values for observation_size 4" in capsys.readouterr().err
