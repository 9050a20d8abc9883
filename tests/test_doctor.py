"""`doctor`'s stand-in answers are GitHub's, and it knows every environment any bake's workflows use.

tests/github_rest/schemas.json holds the 200-response schemas of the seven REST reads `doctor` makes,
extracted by scripts/github_rest_schemas.py from GitHub's published OpenAPI description (its header
names the package and version). The generated project's tests/core/github_api/ bodies must validate
against them, with no property the description does not define where the schema lists properties:
an answer shaped otherwise would test doctor against a GitHub that does not exist.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import TEMPLATE, run

SCHEMAS = json.loads((Path(__file__).parent / "github_rest" / "schemas.json").read_text())["operations"]
FIXTURES = TEMPLATE / "{{cookiecutter.project_slug}}" / "tests" / "core" / "github_api"
OPERATION = {
    "environments.json": "repos/get-all-environments",
    "deployment-branch-policies.json": "repos/list-deployment-branch-policies",
    "environment-secrets.json": "actions/list-environment-secrets",
    "repository-secrets.json": "actions/list-repo-secrets",
    "branch-rules.json": "repos/get-branch-rules",
    "branch-protection.json": "repos/get-branch-protection",
    "oidc-sub.json": "actions/get-custom-oidc-sub-claim-for-repo",
}
# Schemas composed with allOf/oneOf cannot be closed part by part: for those, the types are checked only.
OPEN = {"repos/get-branch-rules"}


def closed(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever it lists properties and says nothing else."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def validator(operation: str) -> jsonschema.Draft7Validator:
    schema = SCHEMAS[operation]["schema"]
    return jsonschema.Draft7Validator(schema if operation in OPEN else closed(schema))


def test_every_fixture_is_one_of_the_reads_doctor_makes():
    assert sorted(path.name for path in FIXTURES.glob("*.json")) == sorted(OPERATION)
    assert set(OPERATION.values()) == set(SCHEMAS)


@pytest.mark.parametrize("name", sorted(OPERATION))
def test_fixture_has_the_shape_of_githubs_documented_response(name):
    body = json.loads((FIXTURES / name).read_text())
    errors = sorted(validator(OPERATION[name]).iter_errors(body), key=str)
    assert not errors, "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)


def test_the_schema_check_catches_a_wrong_shape():
    """Proof the check can fail: a misspelt field, a wrong type, a missing required field."""
    environments = json.loads((FIXTURES / "environments.json").read_text())
    misspelt = copy.deepcopy(environments)
    first = misspelt["environments"][0]
    first["deployment_branch_policies"] = first.pop("deployment_branch_policy")
    wrong_type = copy.deepcopy(environments)
    wrong_type["total_count"] = "6"
    secrets = json.loads((FIXTURES / "environment-secrets.json").read_text())
    del secrets["secrets"][0]["created_at"]
    policy = json.loads((FIXTURES / "deployment-branch-policies.json").read_text())
    policy["branch_policies"][0]["type"] = "ref"
    for operation, body in (
        ("repos/get-all-environments", misspelt),
        ("repos/get-all-environments", wrong_type),
        ("actions/list-environment-secrets", secrets),
        ("repos/list-deployment-branch-policies", policy),
    ):
        assert list(validator(operation).iter_errors(body)), (operation, body)


@pytest.mark.parametrize(
    "options",
    [{}, {"deploy_target": "azureml"}, {"train_on": "databricks"}, {"task": "reinforcement", "framework": "pytorch"}],
    ids=["default", "azureml", "databricks", "reinforcement"],
)
def test_doctor_has_a_requirement_for_every_environment_a_bake_uses(baked, options):
    project = baked(**options)
    code = (
        "import json; from pathlib import Path; from credit_model.ops import doctor; "
        "used = doctor.environments_used(Path('.')); "
        "print(json.dumps({'used': sorted(used), 'known': sorted(doctor.REQUIREMENTS)}))"
    )
    found = json.loads(run(project, "-c", code).stdout)
    assert set(found["used"]) <= set(found["known"]), found  # a new environment needs its row
    # and no row outlives its environment: only the prediction log's are absent where there is no log
    unused = {"monitoring", "scoring"} if options.get("task") == "reinforcement" else set()
    assert set(found["known"]) - set(found["used"]) == unused, found
