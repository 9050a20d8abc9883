"""`score` on a local ONNX file that follows the contract: predictions equal onnxruntime's row for row,
in chunks, with the model's lineage; a file that fails the training suite leaves no output; the
config's CSV options are honoured. (By registry alias, with the prediction log: the template's tests.)"""

from __future__ import annotations

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
