"""The Azure ML endpoint's traffic as the deploy workflow moves it (.github/workflows/_deploy-azureml.yml).

`azureml-slot` names the idle slot the new version goes to; `azureml-traffic --stage canary|full|rollback`
reads the endpoint's traffic map, plans the next one (traffic.py), sets it with
`az ml online-endpoint update --traffic` and reads it back: the command fails unless the endpoint
reports exactly the planned map. The canary saves the map it found (--state), which the rollback restores.
The Azure CLI does the talking (the runner has it, azure/login signs it in), so the project needs no
Azure SDK; `--az` (or $AZ) names another executable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...errors import CheckFailed, UsageError
from . import traffic


class Endpoint:
    """One online endpoint, through `az ml` (resource group and workspace from the arguments, else
    from `az configure --defaults`)."""

    def __init__(self, name: str, resource_group: str | None, workspace: str | None, az: str | None) -> None:
        if not traffic.NAME.fullmatch(name):
            raise UsageError(f"--endpoint {name!r}: an endpoint name is 3-32 letters, digits and '-'")
        executable = az or os.environ.get("AZ") or "az"
        found = shutil.which(executable)
        if found is None:
            raise UsageError(
                f"{executable!r} not found: install the Azure CLI and its ml extension (az extension add --name ml)"
            )
        self.name = name
        self.az = found
        self.scope = (["--resource-group", resource_group] if resource_group else []) + (
            ["--workspace-name", workspace] if workspace else []
        )

    def _run(self, *args: str) -> Any:
        command = [self.az, "ml", *args, *self.scope, "--output", "json"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise CheckFailed(f"`az ml {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()[-2000:]}")
        try:
            return json.loads(result.stdout or "null")
        except json.JSONDecodeError as error:
            raise CheckFailed(f"`az ml {' '.join(args)}` answered no JSON ({error}): {result.stdout[:500]}") from None

    def deployments(self) -> set[str]:
        listed = self._run("online-deployment", "list", "--endpoint-name", self.name)
        return {str(item["name"]) for item in listed or []}

    def shares(self, deployments: set[str]) -> traffic.Traffic:
        """Every deployment's share; one the endpoint's map leaves out (never given traffic) has 0."""
        shown = self._run("online-endpoint", "show", "--name", self.name)
        if not isinstance(shown, dict):
            raise CheckFailed(f"`az ml online-endpoint show --name {self.name}` answered {shown!r}, not an endpoint")
        reported = traffic.checked(dict(shown.get("traffic") or {}), deployments, f"endpoint {self.name}")
        return {**dict.fromkeys(deployments, 0), **reported}

    def set_traffic(self, planned: traffic.Traffic) -> None:
        self._run("online-endpoint", "update", "--name", self.name, "--traffic", traffic.format_traffic(planned))


def endpoint(args: argparse.Namespace) -> Endpoint:
    return Endpoint(args.endpoint, args.resource_group, args.workspace, args.az)


def publish_deployment(name: str) -> None:
    """`deployment=<name>` on stdout and in $GITHUB_OUTPUT; the name is checked first, so what the
    endpoint reported cannot inject other outputs."""
    if not traffic.NAME.fullmatch(name):
        raise UsageError(f"refusing to publish deployment={name!r}: not an Azure ML deployment name")
    line = f"deployment={name}\n"
    sys.stdout.write(line)
    if target := os.environ.get("GITHUB_OUTPUT"):
        with open(target, "a") as handle:
            handle.write(line)


def run_slot(args: argparse.Namespace) -> None:
    target = endpoint(args)
    current = target.shares(target.deployments())
    print(f"endpoint {target.name}: {traffic.format_traffic(current) or 'no traffic yet'}", file=sys.stderr)
    publish_deployment(traffic.idle_slot(current))


def read_state(path: Path, deployments: set[str]) -> traffic.Traffic:
    if not path.is_file():
        raise UsageError(f"{path}: no saved traffic map (the canary stage writes it): cannot tell what to restore")
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not JSON ({error})") from None
    if not isinstance(saved, dict):
        raise UsageError(f"{path}: expected a JSON object, deployment name -> share")
    return traffic.checked(saved, deployments, str(path))


def run_traffic(args: argparse.Namespace) -> None:
    target = endpoint(args)
    deployments = target.deployments()
    current = target.shares(deployments)
    before = read_state(args.state, deployments) if args.stage == "rollback" else None
    planned = traffic.plan(current, args.deployment, args.stage, args.canary_percent, before)
    if args.stage == "canary":
        args.state.parent.mkdir(parents=True, exist_ok=True)
        args.state.write_text(json.dumps(current))
    print(f"{args.stage}: {traffic.format_traffic(current) or 'none'} -> {traffic.format_traffic(planned)}")
    target.set_traffic(planned)
    reported = target.shares(deployments)
    if reported != {**dict.fromkeys(deployments, 0), **planned}:
        raise CheckFailed(
            f"endpoint {target.name} reports {traffic.format_traffic(reported)} after setting "
            f"{traffic.format_traffic(planned)}"
        )


def add_endpoint_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--endpoint", required=True, help="online endpoint name")
    sub.add_argument("--resource-group", default=os.environ.get("AZUREML_RESOURCE_GROUP") or None)
    sub.add_argument("--workspace", default=os.environ.get("AZUREML_WORKSPACE") or None)
    sub.add_argument("--az", help="Azure CLI executable (default: $AZ, else az on PATH)")


def add_traffic_arguments(sub: argparse.ArgumentParser) -> None:
    add_endpoint_arguments(sub)
    sub.add_argument("--deployment", required=True, help="the new version's deployment (the slot it went to)")
    sub.add_argument("--stage", required=True, choices=traffic.STAGES)
    sub.add_argument("--canary-percent", type=int, default=10, help="the new deployment's share at canary")
    sub.add_argument(
        "--state", type=Path, required=True, help="the map from before the canary: canary writes it, rollback reads it"
    )


COMMANDS = {
    "azureml-slot": ("the endpoint's idle slot (blue/green) for the new deployment", add_endpoint_arguments, run_slot),
    "azureml-traffic": ("move the endpoint's traffic: canary, full or rollback", add_traffic_arguments, run_traffic),
}
