"""Explanations without a run: folding one-hot values onto their column, the model-agnostic estimator, the gate checks.

The estimator is checked against what Shapley values must be for a model whose answer is known: for
an additive model f(x) = sum_c g_c(x_c), a column's value against background rows B is exactly
g_c(x_c) - mean over B of g_c, whatever the orders drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.config import Tracking
from {{ cookiecutter.package_name }}.tabular.config import Config, Data, Explain, ImportanceGate, Model
from {{ cookiecutter.package_name }}.tabular.dataio.data import Column, Schema
from {{ cookiecutter.package_name }}.tabular.gate_checks import importance_checks
from {{ cookiecutter.package_name }}.tabular.pure import attributions
from {{ cookiecutter.package_name }}.tabular.pure.attributions import Attributions
from {{ cookiecutter.package_name }}.tabular.pure.predictions import ClassPredictions, ValuePredictions
from {{ cookiecutter.package_name }}.tabular.pure.shapley import permutation_shapley

TABLE = pd.DataFrame(
    {
        "age_group": ["18-25", "26-40", "26-40", "41-60", "61+", "18-25", "41-60", "26-40"],
        "age": np.array([20, 30, 35, 50, 70, 22, 45, 33], dtype=np.float32),
        "purpose": ["car", "home", "car", "rare", "home", "car", "home", "car"],
    }
)


def test_origins_trace_each_one_hot_column_and_the_shared_rare_column_to_its_input():
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), ["age"]),
            # Seen once: age_group's "61+" and purpose's "rare", each in its column's infrequent column.
            ("categorical", OneHotEncoder(min_frequency=2, sparse_output=False), ["age_group", "purpose"]),
        ]
    ).fit(TABLE)
    # age_group: 3 frequent categories + the infrequent column; purpose: 2 + 1.
    expected = ["age"] + ["age_group"] * 4 + ["purpose"] * 3
    assert attributions.origins(preprocess) == expected
    assert len(expected) == preprocess.transform(TABLE).shape[1]


def test_fold_sums_each_columns_values_and_keeps_every_rows_total():
    values = np.arange(2 * 5 * 1, dtype=np.float64).reshape(2, 5, 1)
    spread = Attributions(values, np.array([0.5]), ["t0", "t1", "t2", "t3", "t4"], ["value"], "test")
    folded = attributions.fold(spread, ["a", "b", "a", "c", "b"], ["a", "b", "c"])
    assert folded.columns == ["a", "b", "c"]
    assert folded.values[:, :, 0].tolist() == [[0 + 2, 1 + 4, 3], [5 + 7, 6 + 9, 8]]
    np.testing.assert_array_equal(folded.explained, spread.explained)


def test_shares_sum_to_one_and_rank_by_mean_magnitude_over_rows_and_outputs():
    values = np.array([[[1.0, -1.0], [1.0, 0.0]], [[-3.0, 1.0], [-1.0, 0.0]]])  # (rows, columns, outputs)
    shares = attributions.shares(Attributions(values, np.zeros(2), ["a", "b"], ["x", "y"], "test"))
    assert shares == {"a": 0.75, "b": 0.25}  # mean |value| over rows: a 2 + 1, b 1 + 0
    assert attributions.ranked(shares) == ["a", "b"]


def test_a_model_that_never_moves_gives_equal_shares():
    still = Attributions(np.zeros((3, 4, 1)), np.zeros(1), list("abcd"), ["value"], "test")
    assert attributions.shares(still) == dict.fromkeys("abcd", 0.25)


def additive(frame: pd.DataFrame) -> ValuePredictions:
    bonus = frame["purpose"].map({"car": 1.0, "home": -2.0, "rare": 4.0}).to_numpy()
    return ValuePredictions(0.5 * frame["age"].to_numpy(np.float64) + bonus)


def test_model_agnostic_values_are_exact_for_an_additive_model_with_a_text_column():
    rows, background = TABLE.iloc[:5], TABLE.iloc[5:]
    explained = permutation_shapley(additive, rows, background, [], orders=1, seed=7)
    expected_age = 0.5 * (rows["age"].to_numpy(np.float64) - background["age"].to_numpy(np.float64).mean())
    bonus = {"car": 1.0, "home": -2.0, "rare": 4.0}
    expected_purpose = rows["purpose"].map(bonus).to_numpy() - background["purpose"].map(bonus).mean()
    np.testing.assert_allclose(explained.values[:, 1, 0], expected_age, atol=1e-9)
    np.testing.assert_allclose(explained.values[:, 2, 0], expected_purpose, atol=1e-9)
    np.testing.assert_allclose(explained.values[:, 0, 0], 0.0, atol=1e-12)  # age_group plays no part
    np.testing.assert_allclose(explained.explained[:, 0], additive(rows).values, atol=1e-9)


def test_model_agnostic_values_add_up_to_each_classs_probability_with_interactions():
    def interacting(frame: pd.DataFrame) -> ClassPredictions:
        score = np.where(frame["purpose"] == "car", frame["age"].to_numpy(np.float64) / 70, 0.2)
        probabilities = np.column_stack([1 - score, score * 0.5, score * 0.5])
        return ClassPredictions(probabilities.argmax(axis=1), probabilities)

    explained = permutation_shapley(interacting, TABLE.iloc[:6], TABLE.iloc[6:], ["a", "b", "c"], orders=3, seed=1)
    assert explained.values.shape == (6, 3, 3) and len(explained.outputs) == 3
    np.testing.assert_allclose(explained.explained, interacting(TABLE.iloc[:6]).probabilities, atol=1e-9)


def explain_config(**gate) -> Config:
    return Config(
        task="binary",
        data=Data(path=Path("t.csv"), target="y", sensitive_features=["sex", "region"]),
        model=Model(framework="sklearn"),
        explain=Explain(gate=ImportanceGate(**gate)),
        tracking=Tracking(experiment="units", model_name="units"),
    )


SCHEMA = Schema(
    task="binary",
    target="y",
    columns={"income": Column(type="number"), "sex": Column(type="string"), "work-class": Column(type="string")},
    sensitive=["sex", "region"],
)
LOGGED = {"importance.income": 0.5, "importance.sex": 0.3125, "importance.work_class": 0.1875}


def test_no_importance_checks_while_the_gate_is_off():
    assert importance_checks(explain_config(), LOGGED, SCHEMA) == []


@pytest.mark.parametrize(("k", "passed"), [(1, True), (2, False)])
def test_a_sensitive_feature_among_the_top_k_fails(k, passed):
    checks = importance_checks(explain_config(forbidden_top_k=k), LOGGED, SCHEMA)
    sex, region = checks  # region is no model input: nothing to rank, it passes
    assert (sex.value, sex.passed) == (0.3125, passed)
    assert sex.threshold == f"not in the top {k} (ranks 2 of 3)"
    assert region.passed and region.value is None


def test_a_share_bound_reads_the_column_through_its_input_name_and_is_inclusive():
    bounds = {"work-class": 0.1875, "sex": 0.25, "no_such_column": 0.5}
    work_class, sex, unknown = importance_checks(explain_config(max_share=bounds), LOGGED, SCHEMA)
    assert (work_class.value, work_class.passed) == (0.1875, True)
    assert (sex.value, sex.passed) == (0.3125, False)
    assert not unknown.passed and "not a feature column" in unknown.threshold


def test_an_importance_gate_on_a_run_that_was_not_explained_fails_and_says_why():
    (check,) = importance_checks(explain_config(max_share={"sex": 0.5}), {}, SCHEMA)
    assert not check.passed and "run `explain`" in check.threshold
    assert lineage.importance_metric("work_class") == "importance.work_class"


def test_a_share_bound_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="fraction of total importance"):
        ImportanceGate(max_share={"sex": 5})
