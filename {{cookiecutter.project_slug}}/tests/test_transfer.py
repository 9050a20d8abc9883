"""Transfer learning's checks before anything trains: the references it takes and the inputs a base must share.

(A base really beating training from scratch, per network framework, is the template's tests/test_transfer.py.)
"""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder

from {{ cookiecutter.package_name }} import data, transfer
from {{ cookiecutter.package_name }}.config import Column, Model
from {{ cookiecutter.package_name }}.errors import UsageError

BASE = transfer.Base("models:/credit@champion", "models:/m-0123abcd", "0123456789abcdef", "3", "sklearn")


@pytest.mark.parametrize(
    "reference",
    ["models:/credit@champion", "models:/{{ cookiecutter.project_slug }}/12", "models:/m-0123abcd", "runs:/0123abcd/model"],
)
def test_registry_and_run_references_are_taken(reference):
    assert Model(framework="sklearn", init_from=reference).init_from == reference


@pytest.mark.parametrize(
    "reference", ["credit@champion", "models:/credit", "runs:/0123abcd/other", "s3://bucket/model"]
)
def test_anything_else_is_refused_naming_the_forms(reference):
    with pytest.raises(ValueError, match="models:/<name>@<alias>, models:/<name>/<version>"):
        Model(framework="sklearn", init_from=reference)


def preprocessing(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    frame = pd.DataFrame({**{name: [1.0, 2.0] for name in numeric}, **{name: ["a", "b"] for name in categorical}})
    return ColumnTransformer(
        [("numeric", SimpleImputer(), numeric), ("categorical", OneHotEncoder(), categorical)]
    ).fit(frame)


def schema(**kinds: str) -> data.Schema:
    return data.Schema(
        task="binary", target="y", columns={name: Column(type=kind) for name, kind in kinds.items()}, sensitive=[]
    )


def test_a_base_on_the_same_columns_is_taken_whatever_their_order():
    same = schema(job="string", income="number", age="number")
    transfer.check_inputs(BASE, preprocessing(["age", "income"], ["job"]), same)


def test_a_base_on_other_columns_is_refused_naming_each():
    base = preprocessing(["age", "income", "debt"], ["job"])
    with pytest.raises(UsageError) as refused:
        transfer.check_inputs(BASE, base, schema(age="number", income="string", job="string", region="string"))
    message = str(refused.value)
    assert "missing here: debt" in message
    assert "not in the base: region" in message
    assert "income (number in the base, text here)" in message
    assert BASE.reference in message and "data.features" in message


def test_lineage_names_the_reference_its_model_run_and_version():
    assert BASE.lineage() == {
        "init_from.uri": "models:/credit@champion",
        "init_from.model_uri": "models:/m-0123abcd",
        "init_from.run_id": "0123456789abcdef",
        "init_from.version": "3",
    }
