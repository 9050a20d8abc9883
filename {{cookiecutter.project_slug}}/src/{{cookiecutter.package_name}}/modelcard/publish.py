"""Making a card for a run or version, and recording it: on the run (artifact) and the version (description)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .. import lineage
from ..errors import UsageError
from . import answers as team
from . import facts as lineage_facts
from .render import render

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

# The registry keeps a version's description in a 5000-character column (MLflow's SQL store); a longer
# card is cut at a section boundary there and is whole in the run's artifact.
MAX_DESCRIPTION = 5000
MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>[1-9][0-9]*))")


def version_of(client: MlflowClient, name: str, version: str) -> lineage_facts.Version:
    found = client.get_model_version(name, version)
    return lineage_facts.Version(name=name, version=str(found.version), aliases=sorted(found.aliases or []))


def make(
    client: MlflowClient,
    run_id: str,
    version: lineage_facts.Version | None,
    local_answers: Path,
    prefer_run: bool = True,
) -> str:
    """The card of `run_id`, with the answers logged with the run when it has them (and `prefer_run`),
    else those in `local_answers`."""
    facts = lineage_facts.read(client, run_id, version)
    if prefer_run and facts.answers_text is not None:
        answers, source = (
            team.parse(facts.answers_text, lineage.MODEL_CARD_ANSWERS_ARTIFACT),
            (f"the model_card.yaml logged with the run (`{lineage.MODEL_CARD_ANSWERS_ARTIFACT}`)"),
        )
    else:
        answers, text = team.read(local_answers)
        source = (
            f"`{local_answers.name}` in the checkout" if text is not None else f"nowhere: {local_answers} not found"
        )
    return render(facts, answers, source)


def description(card: str, run_id: str) -> str:
    pointer = f"Model card (whole, as artifact `{lineage.MODEL_CARD_ARTIFACT}` of run `{run_id}`):\n\n"
    if len(pointer) + len(card) <= MAX_DESCRIPTION:
        return pointer + card
    kept = pointer
    for section in re.split(r"(?m)^(?=## )", card):
        if len(kept) + len(section) > MAX_DESCRIPTION - 80:
            break
        kept += section
    return kept + "\n_(cut here: the registry keeps 5000 characters; the artifact has the rest)_\n"


def record(client: MlflowClient, run_id: str, model_name: str, version: str, answers_path: Path) -> str:
    """At `register`: log the answers and the card to the run, and put the card on the version."""
    import mlflow

    _, text = team.read(answers_path)  # validated: a broken file stops here, naming the field
    with mlflow.start_run(run_id=run_id):
        if text is not None:
            mlflow.log_text(text, lineage.MODEL_CARD_ANSWERS_ARTIFACT)
        card = make(client, run_id, version_of(client, model_name, version), answers_path)
        mlflow.log_text(card, lineage.MODEL_CARD_ARTIFACT)
    client.update_model_version(model_name, version, description=description(card, run_id))
    return card


def resolve(client: MlflowClient, model: str) -> tuple[str, lineage_facts.Version]:
    """`models:/name@alias` or `models:/name/3`: the version's run and the version."""
    match = MODEL_URI.fullmatch(model)
    if not match:
        raise UsageError(f"--model {model!r}: give models:/<name>@<alias> or models:/<name>/<version>")
    from mlflow.exceptions import MlflowException

    name = match["name"]
    try:
        found: ModelVersion = (
            client.get_model_version_by_alias(name, match["alias"])
            if match["alias"]
            else client.get_model_version(name, match["version"])
        )
    except MlflowException as error:
        raise UsageError(f"{model}: no such model version in {client.tracking_uri}: {error.message}") from error
    run_id = str(found.tags.get(lineage.RUN_ID) or found.run_id)
    return run_id, version_of(client, name, str(found.version))
