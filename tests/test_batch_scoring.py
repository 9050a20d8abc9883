"""Batch scoring as a scheduled job does it: `score` by the registry alias `champion` (the version's
trust tags and ONNX digest checked) from the embedded store the pipeline registered into, writing
Parquet and the prediction log on a real PostgreSQL; the logged rows are the Parquet's rows."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import psycopg
import pytest
from mlflow.tracking import MlflowClient

from conftest import SLUG, cli


def test_score_by_champion_alias_writes_parquet_and_the_same_rows_to_the_prediction_log(baked, tmp_path, postgres):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    cli(project, "pipeline", GITHUB_REF="refs/heads/main")  # registered from main: a version a release ships
    store = f"sqlite:///{project / 'mlflow.db'}"
    MlflowClient(store, registry_uri=store).set_registered_model_alias(SLUG, "champion", "1")
    run_id = json.loads((project / "outputs" / "run.json").read_text())["run_id"]

    new = pd.read_csv(project / "data" / "credit_binary.csv").drop(columns=["approved"]).tail(1200)
    settings = {"MLFLOW_TRACKING_URI": store, "PREDICTION_LOG_URL": postgres.url}
    cli(project, "prediction-log", "migrate", "--url", postgres.url)
    new.assign(age=[*new["age"][:-1], 150]).to_csv(project / "bad.csv", index=False)  # the last row out of range
    refused = cli(project, "score", "--input", "bad.csv", "--chunk-rows", "500", "--log-to-db", check=False, **settings)
    assert refused.returncode == 1 and "chunk 3 (rows 1001-1200)" in refused.stderr, refused.stderr
    with psycopg.connect(postgres.url) as connection:  # one transaction: chunks 1 and 2 were not kept either
        assert connection.execute("SELECT count(*) FROM prediction_log").fetchone() == (0,)
    assert not (project / "outputs" / "predictions.parquet").exists()

    new.to_csv(project / "new.csv", index=False)
    result = cli(project, "score", "--input", "new.csv", "--chunk-rows", "500", "--log-to-db", **settings)
    assert "version 1 (alias champion)" in result.stderr and "ONNX digest verified" in result.stderr
    assert "1200 rows in the prediction log" in result.stderr

    scored = pd.read_parquet(project / "outputs" / "predictions.parquet")
    assert len(scored) == 1200 and set(scored["model_version"]) == {"1"} and set(scored["run_id"]) == {run_id}
    with psycopg.connect(postgres.url) as connection:
        logged = connection.execute(
            "SELECT request_id, row_index, source, model_name, model_version, run_id, inputs, prediction,"
            " probabilities FROM prediction_log ORDER BY request_id, row_index"
        ).fetchall()
    assert len(logged) == 1200
    assert {row[2:6] for row in logged} == {("batch", SLUG, "1", run_id)}
    by_key = {(row[0], row[1]): row for row in logged}
    assert len({row[0] for row in logged}) == 3  # one request per chunk: 500 + 500 + 200
    features = list(new.columns)
    for position, (_, row) in enumerate(scored.iterrows()):
        request_id, row_index, *_, inputs, prediction, probabilities = by_key[(row["request_id"], position % 500)]
        assert inputs == {name: row[name] for name in features}
        assert prediction == row["prediction"]
        assert probabilities == pytest.approx([row["probability_0"], row["probability_1"]], rel=1e-6)
