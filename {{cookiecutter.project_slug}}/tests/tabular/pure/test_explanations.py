"""Explanations without a run: folding one-hot values onto their column, the model-agnostic estimator
(the gate on them: tests/tabular/test_gate_checks.py).

The estimator is checked against what Shapley values must be for a model whose answer is known: for
an additive model f(x) = sum_c g_c(x_c), a column's value against background rows B is exactly
g_c(x_c) - mean over B of g_c, whatever the orders drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

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
