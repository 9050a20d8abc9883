"""model_card.yaml: what only the team can say about the model, as a typed record.

Each field's description is the prompt the card shows in its place while the field is left empty:
an unanswered question stays visible in every card instead of disappearing from it.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UsageError

FILE = "model_card.yaml"


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    contact: str = Field("", description="e-mail, team channel or on-call rota")


class Answers(BaseModel):
    # A misspelt key would otherwise leave its answer out of every card without a word.
    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str | None = Field(None, description="What does the model predict, from what, in one or two sentences?")
    owners: list[Owner] = Field(
        default_factory=list,
        description="Who answers for this model (name and contact), and who to call when it fails?",
    )
    intended_use: str | None = Field(
        None, description="Who uses the predictions, for which decision, and with what human oversight?"
    )
    out_of_scope_uses: list[str] = Field(
        default_factory=list,
        description="Which uses must it not be put to (other populations, other decisions, automated refusals...)?",
    )
    training_data: str | None = Field(
        None,
        description="Where do the training rows come from, over what period, and with what consent or legal basis?",
    )
    limitations: list[str] = Field(
        default_factory=list,
        description="Where is it known to do worse (groups, input ranges, rare cases), and what has not been tested?",
    )
    ethical_considerations: str | None = Field(
        None, description="Who could be harmed by its errors or its use, and what was done about it?"
    )
    caveats_and_recommendations: str | None = Field(
        None, description="What should a user of its predictions know or do (thresholds, reviews, retraining cadence)?"
    )


# The card's order and headings for the team's answers.
HEADINGS = {
    "summary": "Summary",
    "owners": "Owners",
    "intended_use": "Intended use",
    "out_of_scope_uses": "Out-of-scope uses",
    "training_data": "Training data (provenance)",
    "limitations": "Limitations",
    "ethical_considerations": "Ethical considerations",
    "caveats_and_recommendations": "Caveats and recommendations",
}


def prompt(field: str) -> str:
    return Answers.model_fields[field].description or ""


def unanswered(answers: Answers) -> list[str]:
    """The fields still empty (None, blank text, empty list), in the card's order."""
    empty = []
    for field in HEADINGS:
        value = getattr(answers, field)
        if value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value):
            empty.append(field)
    return empty


def parse(text: str, where: str) -> Answers:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"{where}: not valid YAML: {error}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a mapping of the card's fields ({', '.join(HEADINGS)})")
    try:
        return Answers.model_validate(raw)
    except ValidationError as error:
        problems = "\n".join(f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UsageError(
            f"{where}: invalid model card answers\n{problems}\n(the fields are: {', '.join(HEADINGS)})"
        ) from error


def read(path: Path) -> tuple[Answers, str | None]:
    """The answers and the file's text; a missing file is a card with every prompt showing (text None)."""
    if not path.is_file():
        return Answers.model_validate({}), None
    text = path.read_text()
    return parse(text, str(path)), text
