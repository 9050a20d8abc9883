"""scikit-learn: one Pipeline (imputation + one-hot encoding + gradient-boosted trees, or a linear model).

config.yaml's model.estimator picks the model: `gradient_boosting` (the default) or `linear`
(logistic regression for classes, ridge regression for values), whose numbers are also standardised.
A linear model is what the server's encrypted endpoint needs (tabular/serving/linear.py).

Transfer learning (model.init_from, ../tabular/training/transfer.py) is a warm start on the base's own pipeline (its
fitted preprocessing kept): gradient boosting adds model.params.max_iter trees to the base's, fitted
on this data's errors; a logistic regression starts its solver from the base's coefficients. Ridge
regression has no warm start in scikit-learn, and is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd
from skl2onnx import to_onnx as skl_to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ...errors import UsageError
from ..config import Model as ModelSettings
from ..config import Split
from ..dataio.data import Schema
from ..dataio.onnx_model import finish
from ..pure.attributions import Attributions, as_attributions, fold, origins
from ..pure.predictions import ClassPredictions, Predictions, ValuePredictions
from ..training.transfer import Base, check_classes, check_inputs
from . import log_skops, model_files, read_skops
from .base import Framework

# Beyond what skops trusts by default, the two types a fitted HistGradientBoosting pipeline holds (a
# linear pipeline needs no more: skops trusts scikit-learn's linear models and scalers); anything else
# in the file is refused. A new estimator that needs more fails to log, naming the type.
TRUSTED_TYPES = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
# The estimators `explain` has an exact explainer for; other pipelines get the model-agnostic one.
EXPLAINED = (HistGradientBoostingClassifier, HistGradientBoostingRegressor, LogisticRegression, Ridge)
MODEL_FILE = "model.skops"  # where mlflow.sklearn.log_model writes a skops model
# A text column's most frequent categories each get a one-hot column; the rarer ones share one.
# Without a cap, a 50-category column is 50 dense float64 columns: on 1M rows the encoded table
# alone is GBs, and the trees' training time grows with its width.
MAX_CATEGORIES = 20


# config.yaml's model.params and tune.space for the gradient boosting estimator, used when config.yaml leaves
# them out; the generated config.yaml shows them. Plain literals: the project generator reads them without
# importing this module (frameworks.declared). With `estimator: linear`, give LogisticRegression's or
# Ridge's parameters instead (e.g. {C: 1.0} or {alpha: 1.0}).
PARAMS = {"max_iter": 150, "learning_rate": 0.08, "max_leaf_nodes": 15, "l2_regularization": 1.0}
TUNE_SPACE = {
    "learning_rate": {"type": "loguniform", "low": 0.02, "high": 0.3},
    "max_leaf_nodes": {"type": "int", "low": 7, "high": 31},
    "l2_regularization": {"type": "uniform", "low": 0.0, "high": 2.0},
}

# A linear classifier fitted by lbfgs on a few thousand scaled rows can need more than scikit-learn's
# default 100 iterations to converge; model.params overrides it.
LINEAR_CLASSIFIER_DEFAULTS: dict[str, Any] = {"max_iter": 1000}


def estimator(kind: str, task: str, params: dict[str, Any], seed: int) -> Any:
    """The model.estimator `kind` for `task`, built with model.params."""
    regression = task == "regression"
    chosen: type
    if kind == "linear":
        chosen = Ridge if regression else LogisticRegression
        params = params if regression else LINEAR_CLASSIFIER_DEFAULTS | params
    else:
        chosen = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    try:
        return chosen(**params, random_state=seed)
    except TypeError as error:
        raise UsageError(
            f"model.params: {error}; model.estimator {kind!r} trains a {chosen.__name__}: give its parameters "
            "(listed in scikit-learn's documentation)"
        ) from error


# model.estimator -> the fitted estimators a warm start can continue (LogisticRegression's lbfgs starts
# from the base's coefficients; Ridge has no warm start).
WARM_STARTS: dict[str, tuple[type, ...]] = {
    "gradient_boosting": (HistGradientBoostingClassifier, HistGradientBoostingRegressor),
    "linear": (LogisticRegression,),
}


def dense(matrix: Any) -> np.ndarray:
    """A transformed table as a dense array (a pipeline from elsewhere may one-hot encode into a sparse one)."""
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix)


def max_categories(schema: Schema) -> int | None:
    # skl2onnx 1.20 converts the shared column only for an encoder of two or more inputs (with one it
    # raises NotImplementedError): a single text column keeps a column per category.
    return MAX_CATEGORIES if len(schema.categorical_inputs) > 1 else None


class ScikitLearn(Framework[Pipeline]):
    name = "sklearn"

    def train(
        self, features: pd.DataFrame, target: pd.Series, schema: Schema, settings: ModelSettings, split: Split
    ) -> Pipeline:
        kind = settings.estimator or "gradient_boosting"
        model = estimator(kind, schema.task, settings.params, split.seed)
        # Trees need no scaling, and scaling would move values across their float32 split thresholds in
        # ONNX; a linear model's coefficients are only comparable (and its solver converges) on scaled numbers.
        imputer = SimpleImputer(strategy="median")
        numeric = make_pipeline(imputer, StandardScaler()) if kind == "linear" else imputer
        preprocess = ColumnTransformer(
            [
                ("numeric", numeric, schema.numeric_inputs),
                (
                    "categorical",
                    OneHotEncoder(handle_unknown="ignore", max_categories=max_categories(schema), sparse_output=False),
                    schema.categorical_inputs,
                ),
            ],
        )
        pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
        return pipeline.fit(features, target)

    def train_from(
        self,
        base: Base,
        model: Pipeline,
        features: pd.DataFrame,
        target: pd.Series,
        schema: Schema,
        settings: ModelSettings,
        split: Split,
    ) -> Pipeline:
        """The base pipeline, warm-started on this data (this module's docstring)."""
        check_inputs(base, model.named_steps["preprocess"], schema)
        fitted = model.named_steps["model"]
        kind = settings.estimator or "gradient_boosting"
        if kind not in WARM_STARTS or type(fitted) not in WARM_STARTS[kind]:
            raise UsageError(
                f"model.init_from: the base {base.reference} is a {type(fitted).__name__}, and this project's "
                f"model.estimator {kind!r} trains a {type(estimator(kind, schema.task, {}, split.seed)).__name__}: "
                "a warm start continues the same estimator, and only gradient boosting (adding trees) and "
                "logistic regression (from its coefficients) can; train from scratch (remove model.init_from)"
            )
        if schema.task != "regression":
            check_classes(base, fitted.classes_.tolist(), target)
        params = dict(settings.params)
        if kind == "gradient_boosting":
            params["max_iter"] = fitted.n_iter_ + params.get("max_iter", fitted.max_iter)
        try:
            fitted.set_params(**params, warm_start=True)
        except ValueError as error:
            raise UsageError(f"model.params: {error}; give {type(fitted).__name__}'s parameters") from error
        # Only the estimator: refitting the preprocessing would move what each of its inputs means.
        fitted.fit(model.named_steps["preprocess"].transform(features), target)
        return model

    def classes(self, model: Pipeline) -> list:
        return model.classes_.tolist() if hasattr(model, "classes_") else []

    def predict(self, model: Pipeline, features: pd.DataFrame) -> Predictions:
        if not hasattr(model, "predict_proba"):
            return ValuePredictions(model.predict(features).astype(np.float32))
        probabilities = model.predict_proba(features)
        return ClassPredictions(model.classes_[probabilities.argmax(axis=1)], probabilities)

    def log_model(self, model: Pipeline, features: pd.DataFrame, predicted: Predictions) -> str:
        return log_skops(model, features, predicted, TRUSTED_TYPES)

    def load_model(self, uri: str) -> Pipeline:
        # Not mlflow.sklearn.load_model: it takes the format (pickle, cloudpickle or skops) and the trusted
        # types from the model's MLmodel file, which anyone who can write to the tracking server can edit.
        return read_skops(uri, model_files(uri), MODEL_FILE, TRUSTED_TYPES, Pipeline)

    def to_onnx(self, model: Pipeline, schema: Schema) -> onnx.ModelProto:
        inputs = [
            (name, FloatTensorType([None, 1]) if kind == "number" else StringTensorType([None, 1]))
            for name, kind in schema.input_kinds.items()
        ]
        options = {id(model): {"zipmap": False}} if schema.task != "regression" else None
        converted = skl_to_onnx(model, initial_types=inputs, options=options, target_opset=17)
        return finish(converted, {"variable": "prediction"})

    def explain(
        self, model: Pipeline, rows: pd.DataFrame, background: pd.DataFrame, orders: int, seed: int
    ) -> Attributions:
        """Exact SHAP values from the model's own structure, in the one-hot space, folded back onto the columns.

        Trees: shap's TreeExplainer along the trees' own paths (no background needed, milliseconds);
        a linear model: LinearExplainer against the background rows. Both explain the model's raw
        output (log-odds for classes), whose shares rank the columns as the probabilities' would.
        Any other pipeline (one brought in by `import-model`) gets the model-agnostic explainer.
        """
        steps = [step for _, step in model.steps]
        if len(steps) != 2 or not isinstance(steps[0], ColumnTransformer) or not isinstance(steps[1], EXPLAINED):
            return super().explain(model, rows, background, orders, seed)
        import shap

        preprocess, estimator = steps
        # Transformed rows are float64 holding float32 values: what the trees were fitted on (split thresholds).
        transformed = dense(preprocess.transform(rows))
        if isinstance(estimator, LogisticRegression | Ridge):
            explainer: Any = shap.LinearExplainer(estimator, dense(preprocess.transform(background)))
            method = "shap.LinearExplainer on the one-hot columns, folded onto each column"
            method += f" ({len(background)} background rows)"
        else:
            explainer = shap.TreeExplainer(estimator)
            method = "shap.TreeExplainer (tree_path_dependent) on the one-hot columns, folded onto each column"
        classes = self.classes(model)
        if not classes:
            outputs = ["value"]
        elif len(classes) == 2:
            outputs = [f"log-odds of {classes[1]!r}"]
        else:
            outputs = [f"logit of {label!r}" for label in classes]
        width = transformed.shape[1]
        values = as_attributions(
            explainer.shap_values(transformed),
            explainer.expected_value,
            [str(i) for i in range(width)],
            outputs,
            method,
        )
        return fold(values, origins(preprocess), list(rows.columns))
