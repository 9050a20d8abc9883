"""Blue/green traffic on an Azure ML online endpoint, as pure functions of its traffic map.

A release deploys the new model to the endpoint's idle slot (`blue` or `green`: the one serving no
traffic), smoke-tests it directly, then moves traffic in stages: `canary` (a small share), `full`
(all of it), or `rollback` (back to the map found before the canary). Each function takes the map
the endpoint reports and returns the map to set; anything that does not add up raises UsageError
naming it, before the endpoint is touched. __init__.py here reads and writes the maps with `az`.
"""

from __future__ import annotations

import re

from ...errors import UsageError

SLOTS = ("blue", "green")
STAGES = ("canary", "full", "rollback")
# Azure ML's own rule for endpoint and deployment names (3 to 32 characters).
NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")

Traffic = dict[str, int]


def checked(traffic: dict[str, object], deployments: set[str], what: str) -> Traffic:
    """The map as {deployment: share}: whole percentages 0-100 summing to 100 (0 when nothing serves
    yet: a new endpoint), every name a deployment of the endpoint."""
    shares: Traffic = {}
    for name, share in traffic.items():
        if not NAME.fullmatch(name):
            raise UsageError(f"{what}: {name!r} is not an Azure ML deployment name (3-32 letters, digits, '-')")
        if name not in deployments:
            have = ", ".join(sorted(deployments)) or "none"
            raise UsageError(f"{what}: deployment {name!r} is not on the endpoint (it has {have})")
        if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
            raise UsageError(f"{what}: {name}={share!r}: a share is a whole percentage from 0 to 100")
        shares[name] = share
    if (total := sum(shares.values())) not in (0, 100):
        raise UsageError(f"{what}: shares sum to {total}, not 100 ({format_traffic(shares)})")
    return shares


def serving(traffic: Traffic) -> list[str]:
    return sorted(name for name, share in traffic.items() if share > 0)


def idle_slot(traffic: Traffic) -> str:
    """The slot the new version goes to: the one with no traffic (blue on a new endpoint)."""
    busy = serving(traffic)
    free = [slot for slot in SLOTS if slot not in busy]
    if len(free) != 1 and busy:
        raise UsageError(
            f"traffic goes to {', '.join(busy)}: expected exactly one of {', '.join(SLOTS)} serving. Move all "
            f"traffic to one slot first (az ml online-endpoint update --traffic '<slot>=100'), then deploy again"
        )
    return free[0]


def plan(
    current: Traffic, deployment: str, stage: str, canary_percent: int = 10, before: Traffic | None = None
) -> Traffic:
    """The traffic map to set for `stage`, from the endpoint's `current` map (already `checked`).

    canary: `deployment` gets `canary_percent`, the deployments serving now share the rest in their
    current proportions (on a new endpoint, with nothing serving, it gets everything: there is
    nobody else to answer); full: `deployment` 100, every other 0; rollback: `before` again, with
    `deployment` at 0 (a first deployment rolled back leaves the endpoint serving nothing).
    """
    if stage not in STAGES:
        raise UsageError(f"stage {stage!r}: expected one of {', '.join(STAGES)}")
    if deployment not in current:
        raise UsageError(
            f"deployment {deployment!r} is not on the endpoint (it has {', '.join(sorted(current)) or 'none'}): "
            "create it before moving traffic"
        )
    others = {name: share for name, share in current.items() if name != deployment}
    if stage == "full":
        return {**dict.fromkeys(others, 0), deployment: 100}
    if stage == "rollback":
        if before is None:
            raise UsageError("rollback needs the traffic map from before the canary (--state file)")
        if before.get(deployment):
            raise UsageError(
                f"the saved map gives {deployment} {before[deployment]}%, yet a canary starts from an idle slot: "
                "it was saved by another release; restore the traffic by hand (az ml online-endpoint update --traffic)"
            )
        restored = {**dict.fromkeys(current, 0), **before, deployment: 0}
        unknown = set(restored) - set(current)
        if unknown:
            raise UsageError(
                f"rollback to {', '.join(sorted(unknown))}: no longer on the endpoint; choose a slot by hand"
            )
        return restored
    if not 1 <= canary_percent <= 99:
        raise UsageError(f"canary share {canary_percent}: give a whole percentage from 1 to 99")
    if current[deployment]:
        raise UsageError(
            f"{deployment} already takes {current[deployment]}% of the traffic: a canary starts from an idle slot"
        )
    remaining = 100 - canary_percent
    old_total = sum(others.values())
    if old_total == 0:
        return {**others, deployment: 100}
    # Largest remainder: the old deployments keep their proportions and the shares still sum to 100.
    exact = {name: share * remaining / old_total for name, share in others.items()}
    shares = {name: int(value) for name, value in exact.items()}
    for name in sorted(exact, key=lambda n: shares[n] - exact[n])[: remaining - sum(shares.values())]:
        shares[name] += 1
    return {**shares, deployment: canary_percent}


def format_traffic(traffic: Traffic) -> str:
    """`az ml online-endpoint update --traffic` takes "blue=90 green=10"."""
    return " ".join(f"{name}={share}" for name, share in sorted(traffic.items()))
