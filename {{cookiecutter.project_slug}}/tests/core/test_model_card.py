"""The model card's rendering and the team's answers, from hand-made facts: no MLflow run, milliseconds.

The template's tests check a card made from a real pipeline run against what MLflow recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.modelcard import answers
from {{ cookiecutter.package_name }}.modelcard.facts import Facts, Version
from {{ cookiecutter.package_name }}.modelcard.publish import MAX_DESCRIPTION, description
from {{ cookiecutter.package_name }}.modelcard.render import render

PROJECT = Path(__file__).resolve().parents[2]
RUN = "0123456789abcdef0123456789abcdef"


def facts(**changes) -> Facts:
    base = {
        "run_id": RUN,
        "experiment_id": "1",
        "start_time_ms": 0,
        "tags": {"git_sha": "c0ffee" * 6 + "c0ff", "gate.verdict": "passed", "export.parity": "passed"},
        "params": {"data.path": "loans.csv", "data.sha256": "ab" * 32, "rows.train": "80", "rows.test": "20"},
        "metrics": {"test.accuracy": 0.875, "train.accuracy": 0.9375, "fairness.sex.accuracy_difference": 0.0625},
        "fairness": {"sex": {"columns": ["sex", "accuracy"], "data": [["female", 0.8125], ["male", 0.875]]}},
    }
    return Facts(**(base | changes))


def test_the_shipped_answers_file_asks_every_question_and_answers_none():
    text = (PROJECT / answers.FILE).read_text()
    assert set(yaml.safe_load(text)) == set(answers.HEADINGS) == set(answers.Answers.model_fields)
    assert answers.unanswered(answers.parse(text, answers.FILE)) == list(answers.HEADINGS)


def test_an_unanswered_field_shows_its_question_and_an_answered_one_its_answer():
    given = answers.parse("summary: Scores loans.\nowners: [{name: Risk team, contact: risk@example.com}]\n", "card")
    card = render(facts(), given, "test")
    assert "## Summary\n\nScores loans.\n" in card and "- Risk team (risk@example.com)" in card
    assert f"model_card.yaml `intended_use`): {answers.prompt('intended_use')}" in card
    assert "**6 of 8 questions in model_card.yaml are not answered yet:**" in card
    assert "Not answered yet** (model_card.yaml `summary`" not in card


def test_a_misspelt_or_mistyped_answer_is_refused_naming_it():
    with pytest.raises(UsageError, match="intended_uses"):
        answers.parse("intended_uses: scoring\n", "model_card.yaml")
    with pytest.raises(UsageError, match="owners"):
        answers.parse("owners: Risk team\n", "model_card.yaml")


def test_what_the_run_recorded_is_in_the_card_and_what_it_did_not_is_said():
    card = render(facts(version=Version("loans", "3", ["challenger"])), answers.Answers.model_validate({}), "test")
    assert card.startswith("# Model card: loans version 3\n")
    assert "| accuracy | 0.8750 | 0.9375 |" in card and "| female | 0.8125 |" in card
    assert "accuracy_difference 0.0625" in card and "Verdict: **passed**" in card and "c0ffee" in card
    for absent in ("the run has no explain/importance.json", "the run logged no privacy.epsilon or privacy.delta"):
        assert f"Not recorded: {absent}" in card
    assert "none recorded (trained from scratch)" in card


def test_explanation_privacy_and_base_model_when_recorded():
    recorded = facts(
        metrics={"privacy.epsilon": 2.5, "privacy.delta": 1e-5},
        params={"privacy.enabled": "true"},
        tags={"init_from.uri": "models:/loans@champion", "init_from.version": "2"},
        importance={"features": {"income": 0.75, "age": 0.25}, "method": "shap.TreeExplainer"},
    )
    card = render(recorded, answers.Answers.model_validate({}), "test")
    assert "epsilon = 2.5, delta = 1e-05 (param privacy.enabled = true)" in card
    assert "uri `models:/loans@champion`, version `2`" in card
    assert "(method: shap.TreeExplainer)" in card and "| income | 75.0% |\n| age | 25.0% |" in card


def test_the_version_description_fits_the_registry_and_points_to_the_whole_card():
    long = "# Model card\n\n" + "".join(f"## Section {n}\n\n{'x' * 900}\n\n" for n in range(10))
    cut = description(long, RUN)
    assert len(cut) <= MAX_DESCRIPTION and "## Section 3" in cut and "## Section 9" not in cut
    assert f"model_card/MODEL_CARD.md` of run `{RUN}`" in cut
    assert description("# short\n", RUN).endswith("# short\n")
