"""What the lineage knows about a run, read from MLflow alone: tags, params, metrics and artifacts.

Every name read here is the one its writer uses (lineage.py and the stages). Whatever a run did not
record (an explanation, a privacy budget, a base model) is None or empty, for the card to say so.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import lineage

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    aliases: list[str]


@dataclass(frozen=True)
class Facts:
    run_id: str
    experiment_id: str
    start_time_ms: int | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    version: Version | None = None
    schema: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    fairness: dict[str, dict[str, Any]] = field(default_factory=dict)  # feature -> {"columns": [...], "data": [...]}
    importance: dict[str, Any] | None = None
    model_importance: dict[str, Any] | None = None
    gate_report: str | None = None
    answers_text: str | None = None  # model_card.yaml as logged with the run

    @property
    def base_model(self) -> dict[str, str]:
        return {
            k[len(lineage.INIT_FROM_PREFIX) :]: v
            for k, v in sorted(self.tags.items())
            if k.startswith(lineage.INIT_FROM_PREFIX)
        }


def _paths(client: MlflowClient, run_id: str, folder: str | None = None) -> set[str]:
    return {item.path for item in client.list_artifacts(run_id, folder)}


def _download(client: MlflowClient, run_id: str, path: str, folder: str) -> Path:
    return Path(client.download_artifacts(run_id, path, folder))


def read(client: MlflowClient, run_id: str, version: Version | None = None) -> Facts:
    run = client.get_run(run_id)
    top = _paths(client, run_id)

    def folder_paths(name: str) -> set[str]:
        return _paths(client, run_id, name) if name in top else set()

    with tempfile.TemporaryDirectory() as scratch:

        def text(path: str, present: set[str]) -> str | None:
            return _download(client, run_id, path, scratch).read_text() if path in present else None

        def document(path: str, present: set[str]) -> dict[str, Any] | None:
            found = text(path, present)
            return json.loads(found) if found is not None else None

        fairness_paths = sorted(p for p in folder_paths(lineage.FAIRNESS_FOLDER) if p.endswith(lineage.FAIRNESS_SUFFIX))
        explain = folder_paths(lineage.EXPLAIN_FOLDER)
        validation = document(
            f"{lineage.VALIDATION_FOLDER}/{lineage.VALIDATION_FILE}", folder_paths(lineage.VALIDATION_FOLDER)
        )
        return Facts(
            run_id=run_id,
            experiment_id=run.info.experiment_id,
            start_time_ms=run.info.start_time,
            tags=dict(run.data.tags),
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            version=version,
            schema=document(lineage.SCHEMA_ARTIFACT, top),
            validation=summarise_validation(validation) if validation is not None else None,
            fairness={
                Path(p).name[: -len(lineage.FAIRNESS_SUFFIX)]: json.loads(
                    _download(client, run_id, p, scratch).read_text()
                )
                for p in fairness_paths
            },
            importance=document(lineage.IMPORTANCE_ARTIFACT, explain),
            model_importance=document(lineage.MODEL_IMPORTANCE_ARTIFACT, explain),
            gate_report=text(
                lineage.GATE_REPORT_ARTIFACT, folder_paths(Path(lineage.GATE_REPORT_ARTIFACT).parent.as_posix())
            ),
            answers_text=text(lineage.MODEL_CARD_ANSWERS_ARTIFACT, folder_paths(lineage.MODEL_CARD_FOLDER)),
        )


def summarise_validation(result: dict[str, Any]) -> dict[str, Any]:
    """validate's saved result, without the full Great Expectations report (or the local path it read)."""
    statistics = result.get("result", {}).get("statistics", {})
    return {
        "success": bool(result.get("success")),
        "sha256": result.get("sha256"),
        "evaluated": statistics.get("evaluated_expectations"),
        "successful": statistics.get("successful_expectations"),
        "failures": list(result.get("failures", [])),
    }
