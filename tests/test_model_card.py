"""The model card of a real pipeline run (`project_with_model`): every figure it shows is read back
from MLflow and compared, the registered version carries it, and an unanswered model_card.yaml field
shows as its question. The rendering case by case is the generated project's tests/core/test_model_card.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import SLUG, cli

CARD_ARTIFACT = "model_card/MODEL_CARD.md"


@pytest.fixture(scope="module")
def recorded(project_with_model, tmp_path_factory):
    """The registered version, its run and the card `register` logged, all as MLflow returns them."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project_with_model / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    registered = json.loads((project_with_model / "outputs" / "registered.json").read_text())
    version = client.get_model_version(SLUG, registered["model_version"])
    run = client.get_run(registered["run_id"])
    folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path_factory.mktemp("card"))))
    return version, run, folder


def test_the_card_of_a_passing_run_holds_its_recorded_figures(recorded):
    version, run, artifacts = recorded
    card = (artifacts / CARD_ARTIFACT).read_text()
    tags, metrics = run.data.tags, run.data.metrics
    assert card.startswith(f"# Model card: {SLUG} version {version.version}\n")
    assert f"`{tags['git_sha']}`" in card and f"`{run.data.params['data.sha256']}`" in card
    for name, value in metrics.items():
        if name.startswith("test."):
            split = name.split(".", 1)[1]
            assert re.search(rf"^\| {split} \| {value:.4f} \| {metrics['train.' + split]:.4f} \|$", card, re.M), name
    # Fairness per group: each group's row of every audited feature, as evaluate logged the table.
    tables = sorted((artifacts / "fairness").glob("*_by_group.json"))
    assert [path.name for path in tables] == ["age_group_by_group.json", "sex_by_group.json"]
    for path in tables:
        logged = json.loads(path.read_text())
        for group, *values in logged["data"]:
            assert f"| {group} | " + " | ".join(f"{value:.4f}" for value in values) + " |" in card, (path.name, group)
    assert f"{metrics['fairness.sex.equalized_odds_difference']:.4f}" in card
    assert tags["export.parity"] == "passed" and tags["gate.verdict"] == "passed"
    assert f"passed (largest difference {metrics['export.parity_max_abs_diff']:.3g})" in card
    assert f"`{tags['onnx.sha256']}`" in card and "Verdict: **passed**" in card
    validation = json.loads((artifacts / "validation" / "validation.json").read_text())["result"]["statistics"]
    assert f"passed, {validation['successful_expectations']} of {validation['evaluated_expectations']}" in card
    # The explain stage's shares, as logged; what this run did not record (a privacy budget) is said, not left out.
    importance = json.loads((artifacts / "explain" / "importance.json").read_text())
    top, share = max(importance["features"].items(), key=lambda item: item[1])
    assert f"method: {importance['method']}" in card and f"| {top} | {share:.1%} |" in card
    assert "## Privacy budget\n\nNot recorded" in card


def test_the_registered_version_carries_the_card(recorded, project_with_model):
    version, run, artifacts = recorded
    card = (artifacts / CARD_ARTIFACT).read_text()
    # Whole, or cut at a section boundary past what the registry keeps: the details and answers always fit.
    assert card[: card.index("## Data")] in version.description
    assert version.description.endswith(card) or "_(cut here" in version.description
    assert f"`{CARD_ARTIFACT}` of run `{run.info.run_id}`" in version.description.splitlines()[0]
    assert (project_with_model / "outputs" / "MODEL_CARD.md").read_text() == card
    # The answers it was made from are logged beside it: the shipped file, every question open.
    shipped = (artifacts / "model_card" / "model_card.yaml").read_text()
    assert shipped == (project_with_model / "model_card.yaml").read_text()
    for field in yaml.safe_load(shipped):
        assert f"> **Not answered yet** (model_card.yaml `{field}`): " in card, field


def test_model_card_command_writes_a_versions_card_with_the_teams_answers(recorded, project_with_model, tmp_path):
    version, _, artifacts = recorded
    answers = tmp_path / "answers.yaml"
    answers.write_text("summary: Decides loan applications.\nlimitations: [Not tested on applicants under 21.]\n")
    output = tmp_path / "MODEL_CARD.md"
    cli(project_with_model, "model-card", "--model", f"models:/{SLUG}/{version.version}", "--answers", str(answers),
        "--output", str(output))  # fmt: skip
    written = output.read_text()
    assert "## Summary\n\nDecides loan applications.\n" in written
    assert "## Limitations\n\n- Not tested on applicants under 21.\n" in written
    assert "> **Not answered yet** (model_card.yaml `intended_use`)" in written
    # Everything the lineage knows is the same as in the card `register` logged.
    logged = (artifacts / CARD_ARTIFACT).read_text()
    assert written[written.index("## Data") :] == logged[logged.index("## Data") :]
    refused = cli(project_with_model, "model-card", "--model", f"models:/{SLUG}/999", "--output", str(output),
                  check=False)  # fmt: skip
    assert refused.returncode == 2 and f"models:/{SLUG}/999: no such model version" in refused.stderr
