"""`score` on an ONNX file that follows the contract: predictions equal onnxruntime's row for row, in
chunks, with the model's lineage; a file that fails the training suite leaves no output; the config's
CSV options are honoured; by registry alias, only a trusted version whose file matches its digest.
(After the real pipeline, with the prediction log on PostgreSQL: the template's tests.)"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from contract_model import TARGETS, build, direct

TASK = "{{ cookiecutter.task }}"
CLASSIFICATION = TASK != "regression"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return build(tmp_path_factory.mktemp("model") / "model.onnx", TASK)


@pytest.fixture
def rows(workspace) -> pd.DataFrame:
    """The last 1,000 rows of the bundled data: rows the contract model was not fitted on."""
    return pd.read_csv(workspace.root / "data" / f"credit_{TASK}.csv").tail(1000).reset_index(drop=True)


def records(frame: pd.DataFrame) -> list[dict]:
    features = frame.drop(columns=[TARGETS[TASK], "id"], errors="ignore").astype(object)
    return features.where(features.notna(), None).to_dict("records")


def check_predictions(scored: pd.DataFrame, expected: dict) -> None:
    if CLASSIFICATION:
        assert scored["prediction"].tolist() == expected["label"].tolist()
        for index in range(expected["probabilities"].shape[1]):
            np.testing.assert_allclose(scored[f"probability_{index}"], expected["probabilities"][:, index], rtol=1e-6)
    else:
        np.testing.assert_allclose(scored["prediction"], expected["prediction"].reshape(-1), rtol=1e-6)


def test_scores_equal_onnxruntime_row_for_row_with_the_models_lineage(workspace, rows, model_path):
    source = workspace.root / "new.csv"
    rows.drop(columns=[TARGETS[TASK]]).to_csv(source, index=False)  # a file to score has no target
    output = workspace.root / "scored" / "predictions.parquet"
    args = ("--input", str(source), "--onnx", str(model_path), "--output", str(output), "--chunk-rows", "300")
    assert workspace.cli("score", *args) == 0

    assert pq.ParquetFile(output).metadata.num_row_groups == 4  # 300 + 300 + 300 + 100: one per chunk
    scored = pd.read_parquet(output)
    check_predictions(scored, direct(model_path, records(rows)))
    pd.testing.assert_frame_equal(
        scored[rows.columns.drop(TARGETS[TASK])], rows.drop(columns=[TARGETS[TASK]]), check_dtype=False
    )
    assert set(scored["model_version"]) == {"7"} and set(scored["run_id"]) == {"0123456789abcdef"}
    assert list(output.parent.iterdir()) == [output]  # no temporary file left beside it


def test_a_chunk_failing_an_expectation_stops_the_file_and_leaves_no_output(workspace, rows, model_path, capsys):
    rows.loc[850, "age"] = 150  # config: age between 18 and 100; in the third chunk of 400
    source = workspace.root / "new.parquet"
    rows.to_parquet(source)
    output = workspace.root / "predictions.parquet"
    output.write_bytes(b"yesterday's predictions")
    args = ("--input", str(source), "--onnx", str(model_path), "--output", str(output), "--chunk-rows", "400")
    assert workspace.cli("score", *args) == 1

    error = capsys.readouterr().err
    assert "chunk 3 (rows 801-1000)" in error and "age: expect_column_values_to_be_between failed" in error
    assert output.read_bytes() == b"yesterday's predictions"  # untouched: nothing half-written
    assert sorted(path.name for path in workspace.root.iterdir() if "predictions" in path.name) == [output.name]


def test_a_missing_column_is_named_before_anything_is_scored(workspace, rows, model_path, capsys):
    source = workspace.root / "new.csv"
    rows.drop(columns=["income"]).to_csv(source, index=False)
    assert workspace.cli("score", "--input", str(source), "--onnx", str(model_path)) == 2
    assert "missing column(s) 'income'" in capsys.readouterr().err
    assert not (workspace.outputs / "predictions.parquet").exists()


def test_the_configs_csv_options_are_honoured(workspace, rows, model_path):
    def csv_options(settings):
        settings["data"]["csv"] = {"separator": ";", "missing_values": ["?"], "strip_whitespace": True}
        settings["data"]["max_null_fraction"] = 0.2

    workspace.edit_config(csv_options)
    rows = rows.head(200).copy()
    rows.loc[::7, "income"] = np.nan
    rows.loc[::11, "employment"] = np.nan
    rows.insert(0, "id", [f"{index:05d}" for index in range(len(rows))])  # not a model input: kept as text
    text = rows.astype(object).where(rows.notna(), "?").astype(str)
    lines = [";".join(f" {name} " for name in text.columns)]
    lines += [";".join(f"  {value} " for value in row) for row in text.itertuples(index=False)]
    source = workspace.root / "new.csv"
    source.write_text("\n".join(lines) + "\n")

    assert workspace.cli("score", "--input", str(source), "--onnx", str(model_path), "--chunk-rows", "64") == 0
    scored = pd.read_parquet(workspace.outputs / "predictions.parquet")
    assert scored["id"].tolist() == rows["id"].tolist()
    assert scored["income"].isna().sum() == rows["income"].isna().sum() > 0
    assert scored["employment"].fillna("?").tolist() == rows["employment"].fillna("?").tolist()
    check_predictions(scored, direct(model_path, records(rows)))


def registered(workspace, model_path, tamper: bool = False, **tags: str) -> tuple[str, str]:
    """A version of the contract model in the workspace's store, tagged as `register` tags it (then `tags`)."""
    client = workspace.client()
    experiment = client.create_experiment("scoring", artifact_location=(workspace.root / "mlruns").as_uri())
    run_id = client.create_run(experiment).info.run_id
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    logged = workspace.root / "logged" / "model.onnx"
    logged.parent.mkdir()
    logged.write_bytes(model_path.read_bytes() + (b"changed" if tamper else b""))
    client.log_artifact(run_id, str(logged), "onnx")
    trusted = {"source_ref": "refs/heads/main", "gate.verdict": "passed", "export.parity": "passed"}
    version = client.create_model_version(
        "{{ cookiecutter.project_slug }}",
        f"runs:/{run_id}/onnx",
        run_id,
        tags=trusted | {"run_id": run_id, "onnx.sha256": digest} | tags,
    )
    return str(version.version), run_id


@pytest.mark.parametrize(
    ("alias", "tamper", "tags", "refusal"),
    [
        ("challenger", False, {}, "has no alias 'champion'"),
        ("champion", False, {"gate.verdict": "failed"}, "is not trusted: its gate verdict is failed"),
        (
            "champion",
            False,
            {"source_ref": "refs/heads/feature"},
            "registered from refs/heads/feature, not refs/heads/main",
        ),
        ("champion", True, {}, "the file changed since; refusing it"),
    ],
    ids=["no-champion", "gate-failed", "other-branch", "digest-mismatch"],
)
def test_by_alias_only_a_trusted_version_with_its_exact_file_scores(
    workspace, rows, model_path, monkeypatch, capsys, alias, tamper, tags, refusal
):
    client = workspace.client()
    client.create_registered_model("{{ cookiecutter.project_slug }}")
    version, run_id = registered(workspace, model_path, tamper, **tags)
    client.set_registered_model_alias("{{ cookiecutter.project_slug }}", alias, version)
    source = workspace.root / "new.csv"
    rows.to_csv(source, index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", workspace.tracking_uri)

    assert workspace.cli("score", "--input", str(source)) == 2
    assert refusal in capsys.readouterr().err
    assert not (workspace.outputs / "predictions.parquet").exists()


def test_by_alias_the_champion_scores_with_its_version_and_run(workspace, rows, model_path, monkeypatch):
    workspace.client().create_registered_model("{{ cookiecutter.project_slug }}")
    version, run_id = registered(workspace, model_path)
    workspace.client().set_registered_model_alias("{{ cookiecutter.project_slug }}", "champion", version)
    source = workspace.root / "new.csv"
    rows.to_csv(source, index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", workspace.tracking_uri)

    assert workspace.cli("score", "--input", str(source)) == 0
    scored = pd.read_parquet(workspace.outputs / "predictions.parquet")
    assert set(scored["model_version"]) == {version} and set(scored["run_id"]) == {run_id}
    check_predictions(scored, direct(model_path, records(rows)))
