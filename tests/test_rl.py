"""task=reinforcement: an RLlib PPO project bakes, runs its pipeline, gates on episode returns, serves actions.

One training (the `pipeline` command, CartPole, the config's CI-sized PPO budget) carries the whole
file: a gate threshold out of reach first (nothing may be registered), then the reachable one
(export, register, and the real server answering with onnxruntime's greedy actions). The bake's own
quick tier runs too (`make test`, its coverage floor enforced), as its CI runs it; its TestTrainedPolicy class,
which trains again, is a `system` test: the project's CI runs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request

import gymnasium as gym
import numpy as np
import onnxruntime as ort
import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from conftest import PACKAGE, SLUG, bake, cli, project_env
from processes import free_port, start, stop, wait_for_http

RL = {"task": "reinforcement", "framework": "pytorch"}


def edit_config(project, change) -> None:
    path = project / "config.yaml"
    settings = yaml.safe_load(path.read_text())
    change(settings)
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def test_reinforcement_needs_the_pytorch_framework(tmp_path, capfd):
    with pytest.raises(FailedHookException):
        bake(tmp_path, task="reinforcement", framework="sklearn")
    assert "answer framework=pytorch" in capfd.readouterr().err
    assert not (tmp_path / SLUG).exists()


def test_an_rl_project_keeps_no_tabular_code(baked):
    project = baked(**RL)
    package = project / "src" / PACKAGE
    for gone in (
        "data",
        "notebooks",
        "bench",
        f"src/{PACKAGE}/tabular",
        f"src/{PACKAGE}/frameworks",
        f"src/{PACKAGE}/tuning.py",
        "tests/tabular",
    ):
        assert not (project / gone).exists(), gone
    # Its family is its own folder beside the core (family.py finds it); the core's stages are shared.
    assert "RLlib" in (package / "rl" / "stages" / "train.py").read_text()
    assert sorted(path.name for path in (package / "stages").glob("*.py")) == [
        "__init__.py",
        "checks.py",
        "context.py",
        "evaluate.py",
        "export.py",
        "gate.py",
        "register.py",
        "train.py",
    ]
    # Encrypted inference (linear tabular models) is the tabular family's: no module of it in the server.
    assert sorted(path.name for path in (package / "serving").glob("*.py") if "encrypt" in path.name) == []
    assert not (package / "serving" / "linear.py").exists()
    assert "ray[rllib]~=2.60.0" in (project / "pyproject.toml").read_text()
    # What its CI lint job runs, mypy aside: mypy follows Ray's sources (over 2 minutes cold), run by hand.
    for command in (
        ["ruff", "format", "--no-cache", "--check", "src", "tests"],
        ["ruff", "check", "--no-cache", "src", "tests"],
    ):
        result = subprocess.run([sys.executable, "-m", *command], cwd=project, capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-4000:]}{result.stderr[-2000:]}"


def test_rl_pipeline_gates_on_returns_registers_and_serves_greedy_actions(baked, tmp_path):
    project = shutil.copytree(baked(**RL), tmp_path / SLUG)
    # Two short PPO iterations: this test is about the stages' promises, not about how well CartPole is learnt.
    budget = {"iterations": 2, "train_batch_size": 500, "minibatch_size": 125, "num_epochs": 4}
    edit_config(project, lambda c: c["rl"].update(budget))
    edit_config(project, lambda c: c["gate"]["thresholds"].update({"evaluate.return_mean": {"min": 1e9}}))
    failed = cli(project, "pipeline", check=False)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "gate failed (evaluate.return_mean)" in failed.stderr
    assert not (project / "outputs" / "registered.json").exists()
    assert not (project / "outputs" / "model.onnx").exists()  # the pipeline stopped at the gate

    run_id = json.loads((project / "outputs" / "run.json").read_text())["run_id"]
    reachable = {"evaluate.return_mean": {"min": 9}, "evaluate.return_min": {"min": 8}}  # CartPole's floor
    edit_config(project, lambda c: c["gate"].update(thresholds=reachable))
    for stage in ("gate", "export", "register"):
        cli(project, stage)
    registered = json.loads((project / "outputs" / "registered.json").read_text())
    assert (registered["run_id"], registered["model_version"]) == (run_id, "1")

    # States CartPole visits under random actions: what the server must answer with onnxruntime's greedy actions.
    env, visited = gym.make("CartPole-v1"), []
    observation, _ = env.reset(seed=7)
    env.action_space.seed(7)
    while len(visited) < 60:
        visited.append(observation)
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            observation, _ = env.reset()
    observations = np.asarray(visited, dtype=np.float32)
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {f"obs_{i}": observations[:, i : i + 1] for i in range(observations.shape[1])}
    (expected,) = session.run(["label"], feeds)

    port, log = free_port(), tmp_path / "server.log"
    command = [sys.executable, "-m", f"{PACKAGE}.serving", "--model", str(project / "outputs" / "model.onnx")]
    server = start([*command, "--port", str(port)], log, env=project_env(project), cwd=project)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=60, process=server, log=log)
        records = [{f"obs_{i}": float(value) for i, value in enumerate(row)} for row in observations]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"records": records}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    finally:
        stop(server)
    assert answer["predictions"] == expected.tolist()
    assert len(set(answer["predictions"])) == 2, "a policy that never changes its action proves little"

    # The bake's quick tier as its CI runs it, coverage floor included (its TestTrainedPolicy class, which
    # trains again, is marked `system`: `make test-system`, CI's next step).
    own = subprocess.run(
        "make test PYTHON=python",
        shell=True,
        cwd=project,
        env=project_env(project),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert own.returncode == 0, own.stdout[-4000:]
    assert "Required test coverage of" in own.stdout and " reached" in own.stdout
