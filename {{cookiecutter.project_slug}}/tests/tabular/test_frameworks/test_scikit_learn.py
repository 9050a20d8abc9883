"""The sklearn framework's explanations (frameworks/scikit_learn.py): exact SHAP values folded onto the user's
columns add up to the model's raw output. Kept with its framework: the post-generation hook removes this file
with scikit_learn.py from a project generated for another framework."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.tabular.config import Model, Split
from {{ cookiecutter.package_name }}.tabular.dataio.data import Column, Schema
from {{ cookiecutter.package_name }}.tabular.frameworks.scikit_learn import ScikitLearn
from {{ cookiecutter.package_name }}.tabular.pure import attributions


@pytest.mark.parametrize("estimator", ["gradient_boosting", "linear"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_sklearns_exact_values_folded_onto_columns_add_up_to_the_models_raw_output(estimator, task):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "income": rng.normal(50, 10, 400).astype(np.float32),
            "purpose": rng.choice(["car", "home", "study"], 400),
            "sex": rng.choice(["female", "male"], 400),
        }
    )
    score = (table["income"] - 50) / 10 + table["purpose"].map({"car": 1.0, "home": 0.0, "study": -1.0})
    target = {
        "binary": (score > 0).astype(str),
        "multiclass": pd.cut(score, [-np.inf, -0.5, 0.5, np.inf], labels=["a", "b", "c"]).astype(str),
        "regression": score.astype(np.float32),
    }[task]
    schema = Schema(
        task=task,
        target="y",
        columns={"income": Column(type="number"), "purpose": Column(type="string"), "sex": Column(type="string")},
        sensitive=["sex"],
    )
    framework = ScikitLearn()
    params = {"max_iter": 10} if estimator == "gradient_boosting" else {}  # a few trees: enough to explain
    settings = Model(framework="sklearn", estimator=estimator, params=params)
    model = framework.train(table, target, schema, settings, Split())
    explained = framework.explain(model, table.iloc[:50], table.iloc[350:], orders=1, seed=0)

    raw = model.decision_function(table.iloc[:50]) if task != "regression" else model.predict(table.iloc[:50])
    assert explained.columns == ["income", "purpose", "sex"]
    assert explained.method.startswith("shap.LinearExplainer" if estimator == "linear" else "shap.TreeExplainer")
    np.testing.assert_allclose(explained.explained, np.asarray(raw).reshape(50, -1), atol=1e-6)
    shares = attributions.shares(explained)
    assert attributions.ranked(shares)[-1] == "sex"  # the target never depended on it
