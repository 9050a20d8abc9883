"""The interface every framework implements, so every stage is the same whatever trains the model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

if TYPE_CHECKING:  # only for annotations: importing this module stays cheap
    import onnx
    import pandas as pd

    from ..config import Model as ModelSettings
    from ..config import Privacy, Split
    from ..data import Schema
    from ..predictions import Predictions

Model = TypeVar("Model")  # what a framework trains, predicts with, logs and loads


class Framework(ABC, Generic[Model]):
    """A framework: one subclass with a `name` (config.yaml's model.framework) in one module of this folder."""

    name: ClassVar[str]

    @abstractmethod
    def train(
        self, features: pd.DataFrame, target: pd.Series, schema: Schema, settings: ModelSettings, split: Split
    ) -> Model:
        """A fitted model; `settings` is config.yaml's model section, `split` gives the seed and validation size."""

    def train_private(
        self,
        features: pd.DataFrame,
        target: pd.Series,
        schema: Schema,
        settings: ModelSettings,
        split: Split,
        privacy: Privacy,
    ) -> Model:
        """As `train`, with differential privacy (config.yaml's privacy section); only some frameworks can."""
        from ..errors import UsageError

        raise UsageError(
            f"privacy.enabled: {self.name} cannot train with differential privacy (pytorch can); "
            "set privacy.enabled: false"
        )

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
