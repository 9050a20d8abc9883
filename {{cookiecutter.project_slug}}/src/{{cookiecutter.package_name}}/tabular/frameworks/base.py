"""The interface every framework implements, so every stage is the same whatever trains the model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from ...errors import UsageError

if TYPE_CHECKING:  # only for annotations: importing this module stays cheap
    import onnx
    import pandas as pd

    from ..config import Model as ModelSettings
    from ..config import Privacy, Split
    from ..dataio.data import Schema
    from ..pure.attributions import Attributions
    from ..pure.predictions import Predictions
    from ..training.transfer import Base

Model = TypeVar("Model")  # what a framework trains, predicts with, logs and loads


class Framework(ABC, Generic[Model]):
    """A framework: one subclass with a `name` (config.yaml's model.framework) in one module of this folder."""

    name: ClassVar[str]
    trains_privately: ClassVar[bool] = False  # its training loop honours `privacy` (DP-SGD)
    privacy: Privacy | None = None  # DP-SGD's settings, while train_private runs

    @abstractmethod
    def train(
        self, features: pd.DataFrame, target: pd.Series, schema: Schema, settings: ModelSettings, split: Split
    ) -> Model:
        """A fitted model; `settings` is config.yaml's model section, `split` gives the seed and validation size."""

    def train_from(
        self,
        base: Base,
        model: Model,
        features: pd.DataFrame,
        target: pd.Series,
        schema: Schema,
        settings: ModelSettings,
        split: Split,
    ) -> Model:
        """Like train, starting from `model` (`base`'s, read by load_model) instead of from scratch (transfer.py).

        A framework that cannot says so: this default refuses.
        """
        raise UsageError(
            f"model.init_from: the {self.name} framework cannot start from a trained model; remove "
            "model.init_from (and --init-from) to train from scratch"
        )

    def train_private(
        self,
        features: pd.DataFrame,
        target: pd.Series,
        schema: Schema,
        settings: ModelSettings,
        split: Split,
        privacy: Privacy,
    ) -> Model:
        """As `train`, with differential privacy (config.yaml's privacy section); only frameworks that set
        `trains_privately` can, by reading `self.privacy` in their training loop."""
        if not self.trains_privately:
            raise UsageError(
                f"privacy.enabled: {self.name} cannot train with differential privacy (pytorch can); "
                "set privacy.enabled: false"
            )
        self.privacy = privacy
        try:
            return self.train(features, target, schema, settings, split)
        finally:
            self.privacy = None

    @abstractmethod
    def classes(self, model: Model) -> list:
        """Class labels in probability-column order ([] for regression)."""

    @abstractmethod
    def predict(self, model: Model, features: pd.DataFrame) -> Predictions:
        """ClassPredictions for classification, ValuePredictions for regression."""

    @abstractmethod
    def log_model(self, model: Model, features: pd.DataFrame, predicted: Predictions) -> str:
        """The model logged inside the active MLflow run; returns its URI (`models:/m-…`)."""

    @abstractmethod
    def load_model(self, uri: str) -> Model:
        """The model `log_model` wrote, read from data-only files: never unpickles (see frameworks.model_files)."""

    @abstractmethod
    def to_onnx(self, model: Model, schema: Schema) -> onnx.ModelProto:
        """The model as ONNX, meeting the project's contract (see onnx_model.py)."""

    # Optional: what `explain` asks; the defaults suit any model that predicts from a table.

    def explain(
        self, model: Model, rows: pd.DataFrame, background: pd.DataFrame, orders: int, seed: int
    ) -> Attributions:
        """SHAP values of `rows` per input column, against `background` rows (both as `predict` takes them).

        The default is model-agnostic (shapley.py: `orders` random orders of the columns per row); a
        framework with a faster exact explainer for its models (trees, linear models) overrides it.
        """
        from ..pure.shapley import permutation_shapley

        return permutation_shapley(
            lambda part: self.predict(model, part), rows, background, self.classes(model), orders, seed
        )

    def global_importance(self, model: Model, features: pd.DataFrame) -> dict[str, float] | None:
        """The model's own global explanation, if it has one: each column of `features` (the rows `predict`
        takes) -> its share of the total importance, the shares summing to 1.

        None (this default): the model explains nothing by itself, and the explain stage measures it from outside.
        A glass-box model (the EBM) overrides it with what it learnt.
        """
        return None
