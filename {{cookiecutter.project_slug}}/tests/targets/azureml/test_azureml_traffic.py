"""Blue/green on Azure ML: the traffic plans (targets/azureml/traffic.py), and the commands the deploy workflow
runs (its __init__.py) against a stand-in `az` that keeps one endpoint's state in a JSON file."""

from __future__ import annotations

import json
import sys

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.targets.azureml.traffic import checked, idle_slot, plan

BOTH = {"blue", "green"}


def test_canary_full_and_rollback_from_one_serving_slot():
    before = {"blue": 100, "green": 0}
    canary = plan(before, "green", "canary", 10)
    assert canary == {"blue": 90, "green": 10}
    assert plan(canary, "green", "full") == {"blue": 0, "green": 100}
    assert plan(canary, "green", "rollback", before=before) == before
    assert plan({"blue": 0, "green": 100}, "green", "rollback", before=before) == before


def test_canary_keeps_the_old_proportions_and_a_sum_of_100():
    assert plan({"a": 50, "b": 50, "green": 0}, "green", "canary", 15) == {"a": 43, "b": 42, "green": 15}
    assert plan({"a": 70, "b": 30, "green": 0}, "green", "canary", 33) == {"a": 47, "b": 20, "green": 33}


def test_a_new_endpoint_gets_everything_at_once_and_nothing_on_rollback():
    """Nothing serves yet: there is nobody to share with, and nothing to go back to."""
    assert idle_slot({}) == "blue"
    assert plan({"blue": 0}, "blue", "canary", 10) == {"blue": 100}
    assert plan({"blue": 100}, "blue", "rollback", before={}) == {"blue": 0}


def test_the_idle_slot_is_the_one_without_traffic():
    assert idle_slot({"blue": 100, "green": 0}) == "green"
    assert idle_slot({"blue": 0, "green": 100}) == "blue"
    with pytest.raises(UsageError, match="traffic goes to blue, green"):
        idle_slot({"blue": 90, "green": 10})  # a release stopped half-way: settle it by hand first
    with pytest.raises(UsageError, match="traffic goes to manual"):
        idle_slot({"manual": 100})


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ({"blue": 60, "green": 30}, "shares sum to 90, not 100"),
        ({"blue": 101}, "whole percentage from 0 to 100"),
        ({"blue": 50.5, "green": 49.5}, "whole percentage"),
        ({"blue": True}, "whole percentage"),
        ({"orange": 100}, "deployment 'orange' is not on the endpoint"),
        ({"b": 100}, "not an Azure ML deployment name"),
    ],
)
def test_maps_that_do_not_add_up_are_refused(traffic, message):
    with pytest.raises(UsageError, match=message):
        checked(traffic, BOTH | {"b"}, "endpoint e")


@pytest.mark.parametrize(
    ("current", "stage", "share", "message"),
    [
        ({"blue": 100}, "canary", 10, "deployment 'green' is not on the endpoint"),
        ({"blue": 90, "green": 10}, "canary", 10, "green already takes 10%"),
        ({"blue": 100, "green": 0}, "canary", 100, "from 1 to 99"),
        ({"blue": 100, "green": 0}, "canary", 0, "from 1 to 99"),
        ({"blue": 100, "green": 0}, "sideways", 10, "expected one of canary, full, rollback"),
        ({"blue": 90, "green": 10}, "rollback", 10, "needs the traffic map from before"),
    ],
)
def test_impossible_moves_are_refused(current, stage, share, message):
    with pytest.raises(UsageError, match=message):
        plan(current, "green", stage, share)


def test_rollback_to_a_map_that_cannot_be_this_canarys_is_refused():
    with pytest.raises(UsageError, match="rollback to red: no longer on the endpoint"):
        plan({"blue": 90, "green": 10}, "green", "rollback", before={"red": 100})
    with pytest.raises(UsageError, match="the saved map gives green 100%, yet a canary starts from an idle slot"):
        plan({"blue": 90, "green": 10}, "green", "rollback", before={"green": 100})


STAND_IN_AZ = """
import json, os, sys
path = os.environ["AZ_STATE"]
state = json.load(open(path))
args = sys.argv[1:]
state["calls"].append(args)
if state.get("fail"):
    json.dump(state, open(path, "w"))
    sys.exit(state["fail"])
value = lambda name: args[args.index(name) + 1]
if args[:3] == ["ml", "online-deployment", "list"]:
    answer = [{"name": name} for name in state["deployments"]]
elif args[:3] == ["ml", "online-endpoint", "show"]:
    answer = {"name": value("--name"), "traffic": state["traffic"]}
elif args[:3] == ["ml", "online-endpoint", "update"]:
    if not state["ignore_updates"]:
        state["traffic"] = {k: int(v) for k, v in (pair.split("=") for pair in value("--traffic").split())}
    answer = {"name": value("--name"), "traffic": state["traffic"]}
else:
    sys.exit("stand-in az: unexpected " + " ".join(args))
json.dump(state, open(path, "w"))
print(json.dumps(answer))
"""


@pytest.fixture
def az(tmp_path, monkeypatch):
    """A stand-in `az` for one endpoint whose blue slot serves; returns a reader of its state."""
    executable = tmp_path / "az"
    executable.write_text(f"#!{sys.executable}\n{STAND_IN_AZ}")
    executable.chmod(0o755)
    state = tmp_path / "az-state.json"
    state.write_text(
        json.dumps({"deployments": ["blue", "green"], "traffic": {"blue": 100}, "ignore_updates": False, "calls": []})
    )
    monkeypatch.setenv("AZ", str(executable))
    monkeypatch.setenv("AZ_STATE", str(state))
    return lambda: json.loads(state.read_text())


def traffic_command(tmp_path, stage: str, *extra: str) -> int:
    return main(
        ["azureml-traffic", "--endpoint", "credit-staging", "--deployment", "green", "--stage", stage]
        + ["--state", str(tmp_path / "before.json"), "--resource-group", "rg", "--workspace", "ws", *extra]
    )


def test_the_workflow_commands_move_traffic_and_roll_it_back(az, tmp_path, monkeypatch, capsys):
    outputs = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    assert main(["azureml-slot", "--endpoint", "credit-staging"]) == 0
    assert outputs.read_text() == "deployment=green\n"

    assert traffic_command(tmp_path, "canary", "--canary-percent", "20") == 0
    assert az()["traffic"] == {"blue": 80, "green": 20}
    assert json.loads((tmp_path / "before.json").read_text()) == {"blue": 100, "green": 0}
    update = next(call for call in az()["calls"] if call[2] == "update")
    assert update[update.index("--traffic") + 1] == "blue=80 green=20"
    assert update[update.index("--resource-group") + 1] == "rg" and update[update.index("--workspace-name") + 1] == "ws"

    assert traffic_command(tmp_path, "rollback") == 0
    assert az()["traffic"] == {"blue": 100, "green": 0}
    assert "rollback: blue=80 green=20 -> blue=100 green=0" in capsys.readouterr().out


def test_the_command_fails_when_the_endpoint_does_not_take_the_new_map(az, tmp_path, capsys):
    state = az()
    state["ignore_updates"] = True
    (tmp_path / "az-state.json").write_text(json.dumps(state))
    assert traffic_command(tmp_path, "full") == 1
    assert "endpoint credit-staging reports blue=100 green=0 after setting blue=0 green=100" in capsys.readouterr().err


def test_a_map_that_does_not_add_up_stops_before_anything_is_set(az, tmp_path, capsys):
    state = az()
    state["traffic"] = {"blue": 70, "green": 20}
    (tmp_path / "az-state.json").write_text(json.dumps(state))
    assert traffic_command(tmp_path, "canary") == 2
    assert "endpoint credit-staging: shares sum to 90, not 100" in capsys.readouterr().err
    assert [call[2] for call in az()["calls"]] == ["list", "show"]
    assert not (tmp_path / "before.json").exists()


def test_what_az_says_when_it_fails_is_passed_on(az, tmp_path, capsys):
    state = az()
    state["fail"] = "ERROR: (UserError) No online endpoint named credit-staging in workspace ws"
    (tmp_path / "az-state.json").write_text(json.dumps(state))
    assert main(["azureml-slot", "--endpoint", "credit-staging"]) == 1
    assert "exited 1: ERROR: (UserError) No online endpoint named credit-staging" in capsys.readouterr().err


def test_a_missing_az_or_deployment_says_what_to_do(az, tmp_path, capsys):
    assert main(["azureml-slot", "--endpoint", "credit-staging", "--az", str(tmp_path / "missing-az")]) == 2
    assert "not found: install the Azure CLI" in capsys.readouterr().err
    state = az()
    state["deployments"] = ["blue"]
    (tmp_path / "az-state.json").write_text(json.dumps(state))
    assert traffic_command(tmp_path, "canary") == 2
    assert "deployment 'green' is not on the endpoint (it has blue): create it before moving traffic" in (
        capsys.readouterr().err
    )
