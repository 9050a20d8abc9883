"""Users' own tables: formats, CSV options, column names as they come, labels as they come, and what is refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.errors import CheckFailed, UsageError
from {{ cookiecutter.package_name }}.serving import contract
from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular.config import Csv
from {{ cookiecutter.package_name }}.tabular.dataio import data

PROJECT_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"
ONNX_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the ONNX IR's rule for names: C identifiers


def test_every_column_name_gets_a_valid_unique_input_name():
    columns = ["work-class", "fnlwgt/1000", "hours per week", "a.b", "Größe", "1st", "Score", "score"]
    columns += ["label", "a_b", "a-b", "", "age"]
    names = contract.input_names(columns)
    assert names == [
        "work_class",
        "fnlwgt_1000",
        "hours_per_week",
        "a_b",
        "Gr__e",
        "c_1st",
        "Score",
        "score",  # names that differ only in case stay apart: ONNX names are case-sensitive
        "label_2",  # the output's name is taken
        "a_b_2",
        "a_b_3",
        "c_",
        "age",
    ]
    assert all(ONNX_NAME.fullmatch(name) for name in names) and len(set(names)) == len(names)


def test_the_schema_stores_each_columns_input_name():
    frame = pd.DataFrame({"work-class": ["a", "b"], "hours per week": [1.0, 2.0], "y": [0, 1]})
    settings = configuration.Config(
        task="binary",
        data={"path": "t.csv", "target": "y"},
        model=yaml.safe_load(PROJECT_CONFIG.read_text())["model"],
        tracking={"experiment": "e", "model_name": "m"},
    )
    schema = data.schema(settings, frame)
    described = schema.as_dict()["features"]
    assert [(f["name"], f["input"]) for f in described] == [
        ("work-class", "work_class"),
        ("hours per week", "hours_per_week"),
    ]
    assert list(data.features(frame, schema).columns) == ["work_class", "hours_per_week"]
    assert contract.kinds(schema.as_dict()) == {"work_class": "string", "hours_per_week": "number"}


def test_csv_options_separator_missing_markers_and_whitespace(tmp_path):
    path = tmp_path / "adult.csv"
    path.write_text("age; work-class ;hours\n39; State-gov ;40\n50;?;?\n38;   ;13\n")
    frame = data.read_table(path, Csv(separator=";", missing_values=["?"]))
    assert list(frame.columns) == ["age", "work-class", "hours"]
    assert frame["work-class"].tolist()[0] == "State-gov"
    assert frame["work-class"].isna().tolist() == [False, True, True]  # "?" and an all-blank cell
    assert frame["hours"].dtype.kind == "f" and np.isnan(frame["hours"][1])
    kept = data.read_table(path, Csv(separator=";", strip_whitespace=False))
    assert kept[" work-class "].tolist()[:2] == [" State-gov ", "?"]  # names are kept as written too


def test_parquet_and_compressed_csv_are_read_by_extension(tmp_path):
    frame = pd.DataFrame({"zip code": ["007", "100"], "x": [1.5, None], "y": [True, False]})
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    frame.to_csv(tmp_path / "t.csv.gz", index=False)
    parquet = data.read_table(tmp_path / "t.parquet", Csv())
    pd.testing.assert_frame_equal(parquet, frame, check_dtype=False)
    assert parquet["zip code"].tolist() == ["007", "100"]  # Parquet keeps text as text
    assert data.read_table(tmp_path / "t.csv.gz", Csv())["x"].isna().tolist() == [False, True]
    (tmp_path / "t.xlsx").write_text("")
    with pytest.raises(UsageError, match=r"t.xlsx: unknown table format .xlsx; name the file .csv"):
        data.read_table(tmp_path / "t.xlsx", Csv())


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("a,b,a,y", "repeated column name(s): 'a' (2 times)"),
        ("a,,b,y", "column(s) number 2 have no name"),
        ("a, b ,b,y", "repeated column name(s): 'b' (2 times)"),  # equal once the spaces are stripped
    ],
)
def test_names_that_cannot_work_are_refused_naming_them(tmp_path, header, problem):
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\n1,2,3,0\n")
    with pytest.raises(UsageError, match=re.escape(problem)):
        data.read_table(path, Csv())


def test_repeated_names_in_a_parquet_file_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([[1], [2], [0]], names=["x", "x", "y"]), tmp_path / "t.parquet")
    with pytest.raises(UsageError, match=re.escape("repeated column name(s): 'x' (2 times)")):
        data.read_table(tmp_path / "t.parquet", Csv())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([" >50K", "<=50K ", ">50K"], [">50K", "<=50K", ">50K"]),
        ([True, False, True], ["True", "False", "True"]),
        ([1.0, 0.0, 2.0], [1, 0, 2]),
        ([3, 1, 2], [3, 1, 2]),
    ],
)
def test_class_labels_as_they_come(values, expected):
    assert data.labels(pd.Series(values)).tolist() == expected


@pytest.mark.parametrize(
    ("values", "task", "problem"),
    [
        (["yes", " yes", "yes "], "binary", "only one class ('yes')"),
        (["a", "b", "c"], "binary", "task is binary but it has 3 classes ('a', 'b', 'c'): set task: multiclass"),
        ([0, 1, 0], "multiclass", "set task: binary"),
        (["A", "B", "C"], "regression", "a regression target must be numeric; it holds 'A', 'B', 'C'"),
        ([None, None], "binary", "it has no values"),
    ],
)
def test_targets_that_cannot_work_are_named(values, task, problem):
    assert problem in data.target_problem(pd.Series(values, dtype=object), task)


def test_good_targets_have_no_problem():
    assert data.target_problem(pd.Series([0.5, 1.5, 2.5]), "regression") is None
    assert data.target_problem(pd.Series([True, False]), "binary") is None


def test_too_many_nulls_and_a_bad_target_fail_validation_naming_them(workspace, capsys):
    from {{ cookiecutter.package_name }}.tabular.stages import validate

    settings = configuration.load(workspace.config)
    frame = data.read_table(settings.data_path, settings.data.csv)
    frame.loc[frame.index[: len(frame) // 4], "income"] = np.nan  # 25% missing
    frame.loc[frame.index[:10], "purpose"] = None  # 0.2% missing: within the limit
    frame[settings.data.target] = "one class"
    frame.to_csv(settings.data_path, index=False)
    workspace.edit_config(lambda c: c["data"].update(max_null_fraction=0.05, columns={}))
    if settings.task == "regression":
        workspace.edit_config(lambda c: c.update(task="binary"))

    with pytest.raises(CheckFailed) as failed:
        validate.run(configuration.load(workspace.config))
    message = str(failed.value)
    assert (
        "income: expect_column_values_to_not_be_null failed (25.00% missing; data.max_null_fraction allows 5.00%)"
        in message
    )
    assert "purpose" not in message
    assert f"{settings.data.target}: cannot be the target: it has only one class ('one class')" in message
    saved = yaml.safe_load((workspace.outputs / "validation.json").read_text())
    assert saved["success"] is False and saved["failures"][0].startswith(settings.data.target)
