"""Transfer learning's checks before anything trains: the references it takes and the inputs a base must share.

(A base really beating training from scratch, per network framework, is the template's tests/test_transfer.py.)
"""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder

from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.tabular.config import Column, Model
from {{ cookiecutter.package_name }}.tabular.dataio import data
from {{ cookiecutter.package_name }}.tabular.training import transfer

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


def trusted_tags() -> dict[str, str]:
    """What `register` copies onto a version CI registered on main (lineage.VERSION_TAGS and the ref)."""
    return {
        lineage.SOURCE_REF: transfer.PROTECTED_REF,
        lineage.GATE_VERDICT: lineage.PASSED,
        lineage.EXPORT_PARITY: lineage.PASSED,
        lineage.ONNX_SHA256: "ab" * 32,
    }


def test_only_a_version_a_release_would_ship_is_a_base_unless_opted_out(tmp_path, monkeypatch, empty_store):
    import shutil

    from mlflow.tracking import MlflowClient

    shutil.copy(empty_store, tmp_path / "mlflow.db")  # made once per session: migrations take seconds
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    client = MlflowClient(store, registry_uri=store)
    run = client.create_run(client.create_experiment("transfer"), tags={lineage.FRAMEWORK: "sklearn"})
    client.set_tag(run.info.run_id, lineage.MODEL_URI, f"runs:/{run.info.run_id}/model")
    client.create_registered_model("base")
    source = str(tmp_path / "model")
    vetted = str(client.create_model_version("base", source, run.info.run_id, tags=trusted_tags()).version)
    branch = client.create_model_version(
        "base", source, run.info.run_id, tags=trusted_tags() | {lineage.SOURCE_REF: "refs/heads/experiment"}
    ).version
    branch = str(branch)
    client.set_registered_model_alias("base", "champion", vetted)
    client.set_registered_model_alias("base", "mine", branch)

    assert transfer.resolve(client, "models:/base@champion", "sklearn").version == vetted
    with pytest.raises(UsageError, match="registered from refs/heads/experiment, not refs/heads/main"):
        transfer.resolve(client, "models:/base@mine", "sklearn")
    with pytest.raises(UsageError, match=f"a run's model.*{transfer.OPT_IN}"):
        transfer.resolve(client, f"runs:/{run.info.run_id}/model", "sklearn")
    # Opted out (model.init_from_trust: any): the user vouches for the base.
    assert transfer.resolve(client, "models:/base@mine", "sklearn", trust="any").version == branch
    assert transfer.resolve(client, f"runs:/{run.info.run_id}/model", "sklearn", trust="any").run_id == run.info.run_id
    assert Model(framework="sklearn").init_from_trust == "registered"
