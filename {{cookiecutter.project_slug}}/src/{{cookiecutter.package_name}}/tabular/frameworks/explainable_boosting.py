"""InterpretML's Explainable Boosting Machine: a glass-box model, one learnt shape function per column and pair.

The EBM takes the table as it is: numbers (NaN is its own "missing" bin) and text categories (a missing
one arrives as contract.MISSING_CATEGORY, a category like any other; one never seen in training scores
the unknown bin, 0). It is logged in skops format (no pickle) and exported with ebm2onnx, whose graph
is reshaped to the project's ONNX contract.
"""

from __future__ import annotations

import copy
from importlib.metadata import version
from typing import Any, TypeAlias

import numpy as np
import onnx
import pandas as pd
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

from ...errors import UsageError
from ..config import Model as ModelSettings
from ..config import Split
from ..dataio.data import Schema
from ..dataio.onnx_model import finish
from ..pure.predictions import ClassPredictions, Predictions, ValuePredictions
from . import log_skops, model_files, read_skops, untrusted
from .base import Framework

Ebm: TypeAlias = ExplainableBoostingClassifier | ExplainableBoostingRegressor

# Beyond what skops trusts by default, the EBM classes themselves: their state is numpy arrays, lists,
# dicts and strings, which skops rebuilds as data. Anything else in the file is refused.
TRUSTED_TYPES = [
    "interpret.glassbox._ebm._ebm.ExplainableBoostingClassifier",
    "interpret.glassbox._ebm._ebm.ExplainableBoostingRegressor",
]
MODEL_FILE = "model.skops"  # where mlflow.sklearn.log_model writes a skops model

# InterpretML's defaults bag 14 models and look for up to 90% of the pairs: about 80 s on the bundled
# 5,000 rows on one core. Two bags and the 5 strongest pairs take about 5 s (8 bags and 10 pairs: 30 s,
# 0.002 more AUC); raise outer_bags (smoother shape functions) and interactions in model.params when
# time allows. One core (n_jobs): CI runners are small.
DEFAULTS: dict[str, Any] = {"outer_bags": 2, "interactions": 5, "n_jobs": 1}
# config.yaml's model.params and tune.space, used when config.yaml leaves them out; the generated config.yaml
# shows them. Plain literals: the project generator reads them without importing this module
# (frameworks.declared). The search space is the networks' (as the template has always written it).
PARAMS = {"outer_bags": 2, "interactions": 5}
# The boosting's own knobs (InterpretML's names): how fast it learns, how many leaves a tree of one term
# has, and how few rows a leaf may hold.
TUNE_SPACE = {
    "learning_rate": {"type": "loguniform", "low": 0.005, "high": 0.05},
    "max_leaves": {"type": "int", "low": 2, "high": 4},
    "min_samples_leaf": {"type": "int", "low": 2, "high": 8},
}


def build(task: str, params: dict[str, Any], seed: int) -> Ebm:
    chosen: type = ExplainableBoostingRegressor if task == "regression" else ExplainableBoostingClassifier
    try:
        return chosen(**(DEFAULTS | params), random_state=seed)
    except TypeError as error:
        raise UsageError(
            f"model.params: {error}; the ebm framework trains an {chosen.__name__}: give its parameters "
            "(listed in InterpretML's documentation)"
        ) from error


def as_table(features: pd.DataFrame) -> pd.DataFrame:
    """Text columns as `object`: ebm2onnx's type inference refuses pandas 3's `str` dtype."""
    return features.astype({name: object for name, dtype in features.dtypes.items() if dtype.kind not in "fiub"})


def contract_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """ebm2onnx takes each column as a vector [N]; the contract's inputs are [N, 1].

    Its graph flattens every input to [N, 1] first, so declaring that shape is all it takes.
    """
    for node in model.graph.input:
        shape = node.type.tensor_type.shape
        del shape.dim[:]
        shape.dim.add()
        shape.dim.add().dim_value = 1
    return model


def column_output(model: onnx.ModelProto, vector: str, name: str) -> onnx.ModelProto:
    """The regressor's values [N] as the contract's one output `name`, [N, 1]; its per-term scores dropped."""
    graph = model.graph
    axes = onnx.helper.make_tensor(f"{name}_axes", onnx.TensorProto.INT64, [1], [1])
    graph.initializer.append(axes)
    graph.node.append(onnx.helper.make_node("Unsqueeze", [vector, axes.name], [name]))
    del graph.output[:]
    graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None, 1]))
    return model


class ExplainableBoosting(Framework[Ebm]):
    name = "ebm"

    def train(
        self, features: pd.DataFrame, target: pd.Series, schema: Schema, settings: ModelSettings, split: Split
    ) -> Ebm:
        return build(schema.task, settings.params, split.seed).fit(features, target)

    def classes(self, model: Ebm) -> list:
        return model.classes_.tolist() if isinstance(model, ExplainableBoostingClassifier) else []

    def predict(self, model: Ebm, features: pd.DataFrame) -> Predictions:
        if isinstance(model, ExplainableBoostingRegressor):
            return ValuePredictions(model.predict(features).astype(np.float32))
        probabilities = model.predict_proba(features)
        return ClassPredictions(model.classes_[probabilities.argmax(axis=1)], probabilities)

    def log_model(self, model: Ebm, features: pd.DataFrame, predicted: Predictions) -> str:
        return log_skops(model, features, predicted, TRUSTED_TYPES, [f"interpret-core=={version('interpret-core')}"])

    def load_model(self, uri: str) -> Ebm:
        # Not mlflow.sklearn.load_model: it takes the format and the trusted types from MLmodel, which
        # anyone who can write to the tracking server can edit.
        model = read_skops(uri, model_files(uri), MODEL_FILE, TRUSTED_TYPES, object)
        if not isinstance(model, ExplainableBoostingClassifier | ExplainableBoostingRegressor):
            raise untrusted(uri, MODEL_FILE, f"holds a {type(model).__name__}, not an Explainable Boosting Machine")
        return model

    def to_onnx(self, model: Ebm, schema: Schema) -> onnx.ModelProto:
        import ebm2onnx

        kinds = {name: "float" if kind == "number" else "str" for name, kind in schema.input_kinds.items()}
        if isinstance(model, ExplainableBoostingRegressor):
            # ebm2onnx 3.3.1 sizes a pair's scores by `len(model.classes_)` for regressors too
            # (interpretml/ebm2onnx#28, open): a copy carrying two placeholder classes gets one score
            # per bin, what a binary classifier has and a regressor needs; export's parity check holds it.
            convertible = copy.copy(model)
            convertible.classes_ = np.array([0, 1])
            converted = ebm2onnx.to_onnx(convertible, kinds, predict_proba=False, prediction_name="values")
            return contract_inputs(column_output(converted, "values", "prediction"))
        converted = ebm2onnx.to_onnx(model, kinds, predict_proba=True)
        return contract_inputs(finish(converted, {"prediction": "label"}))

    def global_importance(self, model: Ebm, features: pd.DataFrame) -> dict[str, float]:
        """The EBM's own term importances (mean absolute score), each pair's split evenly between its two
        columns, as shares summing to 1, keyed by `features`' columns (the model's inputs, in order)."""
        inputs = list(model.feature_names_in_)
        if len(features.columns) != len(inputs):
            raise UsageError(
                f"global_importance: the model takes {len(inputs)} columns ({', '.join(inputs)}), "
                f"the table given has {len(features.columns)}: pass the rows predict takes"
            )
        names = [str(column) for column in features.columns]
        totals = dict.fromkeys(names, 0.0)
        for term, importance in zip(model.term_features_, model.term_importances(), strict=True):
            for index in term:
                totals[names[index]] += float(importance) / len(term)
        whole = sum(totals.values())
        return {name: value / whole if whole else 1 / len(totals) for name, value in totals.items()}
