"""The schema a model is trained on, read from config.yaml's data section and the table (no file read here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.tabular.config import Column
from {{ cookiecutter.package_name }}.tabular.dataio import data

from unit_configs import gate_config

# --- data: the schema the model is trained on -----------------------------------------------------


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30, 40, 50],
            "city": ["b", "a", None],
            "member": [True, False, True],
            "score": [0.5, 1.5, np.nan],
            "y": [0, 1, 0],
        }
    )


def test_columns_are_inferred_in_file_order_without_the_target():
    schema = data.schema(gate_config(), frame())
    assert schema.features == ["age", "city", "member", "score"]
    assert schema.numeric == ["age", "score"]
    assert schema.categorical == ["city", "member"]  # booleans are categories, not numbers
    assert schema.columns["city"].values == ["a", "b"]  # sorted, missing values left out
    assert schema.columns["member"].values == ["False", "True"]
    assert (schema.task, schema.target, schema.sensitive) == ("binary", "y", [])


def test_configured_features_and_declared_columns_win_over_inference():
    declared = {"age": Column(type="string", values=["30", "40", "50"])}
    schema = data.schema(gate_config(features=["score", "age"], columns=declared), frame())
    assert schema.features == ["score", "age"]
    assert schema.columns["age"] == declared["age"]


def test_a_declared_column_missing_from_the_file_is_left_to_validation():
    declared = {"income": Column(type="number", min=0)}
    schema = data.schema(gate_config(features=["age", "income"], columns=declared), frame())
    assert schema.columns["income"] == declared["income"]


def test_sensitive_features_absent_from_the_file_are_dropped():
    schema = data.schema(gate_config(sensitive_features=["city", "sex"]), frame())
    assert schema.sensitive == ["city"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "label"}, "data.target: column 'label' is not in table.csv"),
        ({"features": ["age", "y"]}, "data.features: the target 'y' cannot also be a feature"),
        ({"features": ["age", "income"]}, "data.features: income not in table.csv and not declared"),
    ],
)
def test_schema_errors_name_the_setting_to_change(fields, message):
    with pytest.raises(UsageError, match=message):
        data.schema(gate_config(**fields), frame())
