"""Which tier each test belongs to, and which tests must share a pytest-xdist worker (conftest.py applies it).

Tiers (markers registered in conftest.py):
- `fast`: reads the template or a bake without running a pipeline, a server, a container or act: the hook's
  refusals, every lock and checker pin, the default bake's workflows under actionlint, zizmor and the JSON
  schemas, its overlays rendered and validated, its Dockerfiles under hadolint, the template's own ruff.
  `scripts/test.sh --fast` runs these and the `fast_only` ones, within a budget of 2 minutes on 2 cores.
- `fast_only`: a quicker stand-in for a check the full suite makes whole (the default bake's suite without
  its `system` tests, its ruff without mypy): run by `--fast`, deselected otherwise.
- everything else is the full tier, which `scripts/test.sh` (CI) runs together with the fast tests.

Workers (`--dist loadgroup`): a test runs on any worker unless it shares something costly or exclusive:
- `act`: every test using `act_tools`, setup-python's tool cache that the first act job fills with the
  bake's whole lock; one worker installs it once and the runs take turns on it, as they must.
- `podman`: every test using `docker_host`, and the dev container's file: one podman service, one build
  of the local base image at a time (container_engine.py also locks it).
- `mypy`: every test using `mypy_cache`: the first mypy run analyses the libraries (minutes), the others
  reuse that cache (seconds each).
- a file whose module fixture starts servers or trains (`GROUP_BY_FILE`): its tests on one worker, so the
  fixture runs once, in the file's order (test_request_log's last test stops its PostgreSQL).
- `GROUP_BY_PARAM`: the tests of one parameter value share a session cache (test_serialisation trains
  each framework once).
`HEAVY_FIRST` starts the longest units first, so that neither worker is left with a long one at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# file -> test names in the fast tier (a name without [parameters] takes every parametrization); None: all.
FAST: dict[str, tuple[str, ...] | None] = {
    "test_hooks.py": None,
    "test_tooling.py": None,
    "test_deploy_script.py": None,
    "test_bake_units.py": None,
    "test_import_graph.py": None,  # each bake's import-graph check, and that it fails on a forbidden import
    "test_lock_imports.py": None,  # each bake's imports against its lock, read statically
    "test_doctor.py": None,  # GitHub's documented answers against its published schemas; doctor's table per bake
    "test_bake.py": (
        "test_every_option_bakes_clean[binary-sklearn]",
        "test_lint_is_clean_whatever_the_package_name",
        "test_project_builds_a_wheel_with_its_console_script",
    ),
    "test_devcontainer.py": ("test_dev_container_sets_up_the_project_on_its_python",),
    "test_workflows.py": (
        "test_workflows_lint_clean[sklearn-binary]",
        "test_dependabot_and_deploy_script_lint_clean[sklearn-binary]",
        "test_overlays_render_to_valid_kubernetes[sklearn-binary]",
        "test_torch_comes_from_the_cpu_index_only_where_needed[sklearn]",
        "test_security_rules_hold_in_every_workflow[defaults]",
        "test_only_the_protected_branch_writes_and_only_its_commits_ship",
        "test_template_ci_lint_clean",
    ),
    "test_frameworks.py": ("test_every_list_of_frameworks_names_the_same_ones",),
    "test_team_tracking.py": ("test_compose_stack_uses_only_variables_from_env_example",),
    "test_monitoring.py": ("test_the_monitor_workflow_reads_only_and_deploys_nothing",),
    "test_databricks.py": ("test_the_default_bake_trains_on_github_only",),
    "test_triton.py": ("test_triton_image_and_deployment_are_lint_clean",),
    "test_image.py": (
        "test_generated_dockerfile_has_no_hadolint_findings",
        "test_every_pip_install_in_the_images_is_hash_checked",
    ),
    "test_rl.py": ("test_reinforcement_needs_the_pytorch_framework",),
}
FAST_ONLY = {"test_bake_units.py"}

GROUP_BY_FIXTURE = {"act_tools": "act", "docker_host": "podman", "mypy_cache": "mypy"}
GROUP_BY_FILE = {
    "test_devcontainer.py": "podman",
    "test_devcontainer_build.py": "podman",
    # one wheelhouse (tests/wheelhouse.py) filled and read by one worker
    "test_user_install.py": "test_user_install.py",
    "test_explain.py": "test_explain.py",
    "test_model_card.py": "test_model_card.py",
    "test_monitoring.py": "test_monitoring.py",
    "test_privacy.py": "test_privacy.py",
    "test_request_log.py": "test_request_log.py",
    "test_team_tracking.py": "test_team_tracking.py",
    "test_tracking_auth.py": "test_tracking_auth.py",
    "test_triton.py": "test_triton.py",
}
GROUP_BY_PARAM = {"test_serialisation.py": "framework"}

# Units (a group name, or a test id up to any [parameters]) from the longest down, read from the suite's
# code and the timings of scripts/bench_suite.py; every other test follows, in the order collected.
HEAVY_FIRST = (
    "test_bake_units.py::test_default_bake_unit_tests_pass",
    "test_user_install.py",
    "act",
    "podman",
    "mypy",
    "test_frameworks.py::test_framework_runs_the_whole_chain",
    "test_generated.py::test_each_tasks_quick_tier_meets_its_floor_as_ci_runs_it",
    "test_tracking_auth.py",
    "test_request_log.py",
    "test_serialisation.py-tensorflow",
    "test_serialisation.py-keras",
    "test_notebook.py",
    "test_rl.py::test_rl_pipeline_gates_on_returns_registers_and_serves_greedy_actions",
    "test_ray.py",
    "test_monitoring.py",
    "test_team_tracking.py",
    "test_privacy.py",
    "test_transfer.py",
    "test_batch_scoring.py",
    "test_databricks.py::test_databricks_bake_is_lint_clean_and_its_own_tests_pass",
)


def _fast(file: str, item: pytest.Item) -> bool:
    if file not in FAST:
        return False
    names = FAST[file]
    return names is None or item.name in names or item.originalname in names


def _group(file: str, item: pytest.Item) -> str | None:
    for fixture, group in GROUP_BY_FIXTURE.items():
        if fixture in item.fixturenames:
            return group
    if file in GROUP_BY_PARAM:
        callspec = getattr(item, "callspec", None)
        return f"{file}-{callspec.params[GROUP_BY_PARAM[file]]}" if callspec else file
    return GROUP_BY_FILE.get(file)


def _rank(item: pytest.Item, group: str | None) -> int:
    test = f"{item.path.name}::{item.name}"
    for rank, unit in enumerate(HEAVY_FIRST):
        if unit in (group, item.path.name) or test == unit or test.split("[")[0] == unit:
            return rank
    return len(HEAVY_FIRST)


def is_test_file_outside_the_fast_tier(path: Path) -> bool:
    return path.name.startswith("test_") and path.suffix == ".py" and path.name not in FAST


def apply(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test's tier and worker group, select the tier asked for, and put the longest units first."""
    fast = config.getoption("fast")
    if fast:
        _check_fast_names(items)
    kept, dropped, groups = [], [], {}
    for item in items:
        file = item.path.name
        if _fast(file, item):
            item.add_marker(pytest.mark.fast)
        if file in FAST_ONLY:
            item.add_marker(pytest.mark.fast_only)
        if group := _group(file, item):
            item.add_marker(pytest.mark.xdist_group(group))
            if hasattr(config, "workerinput") and config.getvalue("loadgroup"):
                _name_group(item, group)
        groups[item] = group
        selected = item.get_closest_marker("fast") is not None if fast else file not in FAST_ONLY
        (kept if selected else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # A stable sort: the tests of one file keep their order (module fixtures and the tests that follow them).
    items[:] = sorted(kept, key=lambda item: _rank(item, groups[item]))


def _name_group(item: pytest.Item, group: str) -> None:
    """The `@group` suffix xdist's loadgroup scheduler reads from a test's id. pytest 9.2 keeps the id in
    `item._id`, and xdist 3.8 still writes the suffix into `item._nodeid`, which pytest no longer reads:
    without this every test would be scheduled alone (pytest-xdist issue 1386)."""
    if hasattr(item, "_id") and not item.nodeid.endswith(f"@{group}"):
        item._id = type(item._id).parse(f"{item.nodeid}@{group}")


def _check_fast_names(items: list[pytest.Item]) -> None:
    """Every test FAST names exists: a renamed test must not fall out of the fast tier unnoticed."""
    collected: dict[str, set[str]] = {}
    for item in items:
        collected.setdefault(item.path.name, set()).update({item.name, item.originalname})
    for file, names in FAST.items():
        if file in collected and names is not None:
            missing = [name for name in names if name not in collected[file]]
            if missing:
                raise pytest.UsageError(
                    f"tests/tiers.py puts {', '.join(missing)} of {file} in the fast tier, but {file} has no such "
                    "test: rename it in FAST (or drop it there if the test is gone)"
                )
