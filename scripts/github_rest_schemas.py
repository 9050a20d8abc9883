"""Extract the response schemas `doctor` reads from GitHub's published OpenAPI description.

    python scripts/github_rest_schemas.py PATH/TO/api.github.com.json > tests/github_rest/schemas.json

The description is github/rest-api-description's `descriptions/api.github.com/api.github.com.json`,
as published on npm by Octokit (`npm pack @octokit/openapi`, file `generated/api.github.com.json`).
Only the 200 responses of the operations below are kept, each a JSON Schema (draft 7) whose
`definitions` hold every component it refers to; OpenAPI 3.0's `nullable: true` becomes a "null"
type, the only keyword of the description JSON Schema reads differently. tests/test_doctor.py
validates the generated project's fixtures against the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OPERATIONS = {
    "repos/get-all-environments": "/repos/{owner}/{repo}/environments",
    "repos/list-deployment-branch-policies": (
        "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies"
    ),
    "actions/list-environment-secrets": "/repos/{owner}/{repo}/environments/{environment_name}/secrets",
    "actions/list-repo-secrets": "/repos/{owner}/{repo}/actions/secrets",
    "repos/get-branch-rules": "/repos/{owner}/{repo}/rules/branches/{branch}",
    "actions/get-custom-oidc-sub-claim-for-repo": "/repos/{owner}/{repo}/actions/oidc/customization/sub",
    "repos/get-branch-protection": "/repos/{owner}/{repo}/branches/{branch}/protection",
}
PREFIX = "#/components/schemas/"


def convert(node: Any, schemas: dict[str, Any], needed: set[str]) -> Any:
    if isinstance(node, list):
        return [convert(item, schemas, needed) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: convert(value, schemas, needed) for key, value in node.items() if key not in ("example", "nullable")}
    if "$ref" in out:
        name = out["$ref"].removeprefix(PREFIX)
        if name not in needed:
            needed.add(name)
            schemas.setdefault("__queue__", []).append(name)
        out["$ref"] = "#/definitions/" + name
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def main(path: str) -> int:
    description = json.loads(Path(path).read_text())
    components = description["components"]["schemas"]
    result: dict[str, Any] = {
        "source": {
            "description": "github/rest-api-description descriptions/api.github.com/api.github.com.json",
            "package": f"@octokit/openapi {description['info']['version']} generated/api.github.com.json",
            "openapi": description["openapi"],
        },
        "operations": {},
    }
    for operation_id, route in OPERATIONS.items():
        get = description["paths"][route]["get"]
        assert get["operationId"] == operation_id, (route, get["operationId"])
        needed: set[str] = set()
        state: dict[str, Any] = {}
        schema = convert(get["responses"]["200"]["content"]["application/json"]["schema"], state, needed)
        definitions = {}
        while state.get("__queue__"):
            name = state["__queue__"].pop()
            definitions[name] = convert(components[name], state, needed)
        schema = {"$schema": "http://json-schema.org/draft-07/schema#", **schema, "definitions": definitions}
        result["operations"][operation_id] = {"method": "GET", "path": route, "schema": schema}
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
