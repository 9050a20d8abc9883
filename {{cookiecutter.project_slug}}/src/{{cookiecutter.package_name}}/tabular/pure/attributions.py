"""Feature attributions (SHAP values) in the model's input columns, and what `explain` reports from them.

Every framework gives the same shape (Framework.explain): one value per row, input column and model
output, such that a row's values add up to the model's output for it minus the output with nothing
known (`base`). Frameworks that explain in a transformed space (one column per category after one-hot
encoding) fold those values back onto the column each came from with `fold`: SHAP values are additive,
so a category's share is the sum of its one-hot columns' shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer


@dataclass(frozen=True)
class Attributions:
    values: np.ndarray  # (rows, columns, outputs): each column's contribution to each output, per row
    base: np.ndarray  # (outputs,): the output with no column known (its mean over the background rows)
    columns: list[str]  # the model's input names, in the order of the second axis
    outputs: list[str]  # what each output is: "log-odds of 1", "probability of 'high'", "value"
    method: str  # how the values were computed, for the report

    def __post_init__(self) -> None:
        rows, columns, outputs = self.values.shape
        if columns != len(self.columns) or outputs != len(self.outputs) or self.base.shape != (outputs,):
            raise ValueError(
                f"attributions of shape {self.values.shape} (base {self.base.shape}) do not match "
                f"{len(self.columns)} columns and {len(self.outputs)} outputs"
            )

    @property
    def explained(self) -> np.ndarray:
        """(rows, outputs): the model output each row's values add up to."""
        return self.base + self.values.sum(axis=1)


def as_attributions(values: Any, base: Any, columns: list[str], outputs: list[str], method: str) -> Attributions:
    """An explainer's values ((rows, columns) for one output, or (rows, columns, outputs)) in the one shape."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return Attributions(array, np.atleast_1d(np.asarray(base, dtype=np.float64)).reshape(-1), columns, outputs, method)


def origins(preprocess: ColumnTransformer) -> list[str]:
    """The input column each output column of a fitted ColumnTransformer comes from, in output order.

    A transformer that keeps one output per column (imputer, scaler) maps one to one; a OneHotEncoder
    gives each column one output per kept category, plus one for its rare categories when it groups them.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    found: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        where = preprocess.output_indices_[name]
        width = where.stop - where.start
        if width == 0:
            continue  # dropped columns, or a transformer of no columns
        last = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
        if isinstance(last, OneHotEncoder):
            found += [column for column, count in zip(columns, one_hot_widths(last), strict=True) for _ in range(count)]
        elif width == len(columns):
            found += list(columns)
        else:
            raise ValueError(
                f"preprocessing step {name!r} turns {len(columns)} columns into {width}: which column each "
                "output comes from is known for one-hot encoders and one-to-one steps only"
            )
    width = max((where.stop for where in preprocess.output_indices_.values()), default=0)
    if len(found) != width:
        raise ValueError(f"traced {len(found)} output columns, the preprocessing makes {width}")
    return found


def one_hot_widths(encoder: Any) -> list[int]:
    """How many output columns a fitted OneHotEncoder gives each of its input columns."""
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(encoder.categories_)
    dropped = encoder.drop_idx_ if encoder.drop_idx_ is not None else [None] * len(encoder.categories_)
    widths = []
    for categories, rare, drop in zip(encoder.categories_, infrequent, dropped, strict=True):
        width = len(categories) if rare is None else len(categories) - len(rare) + 1  # the rare ones share one
        widths.append(width - (drop is not None))
    return widths


def fold(attributions: Attributions, origin: list[str], columns: list[str]) -> Attributions:
    """Values over transformed columns (whose input columns are `origin`) summed onto `columns`."""
    if len(origin) != len(attributions.columns):
        raise ValueError(f"{len(origin)} origins for {len(attributions.columns)} transformed columns")
    position = {column: index for index, column in enumerate(columns)}
    onto = np.zeros((len(origin), len(columns)))
    onto[np.arange(len(origin)), [position[column] for column in origin]] = 1.0
    values = np.einsum("rto,tc->rco", attributions.values, onto)
    return Attributions(values, attributions.base, list(columns), attributions.outputs, attributions.method)


def shares(attributions: Attributions) -> dict[str, float]:
    """Each column's share of total importance (mean |value| over rows, summed over outputs); they sum to 1.

    A model whose output never moves (every value 0) gives every column an equal share: none drives it more.
    """
    magnitude = np.abs(attributions.values).mean(axis=0).sum(axis=1)
    total = magnitude.sum()
    if total <= 0 or not np.isfinite(total):
        magnitude, total = np.ones_like(magnitude), float(len(magnitude))
    return {column: float(value / total) for column, value in zip(attributions.columns, magnitude, strict=True)}


def ranked(importance: dict[str, float]) -> list[str]:
    """Columns from the largest share down."""
    return sorted(importance, key=lambda column: (-importance[column], column))


def local(attributions: Attributions, rows: pd.DataFrame, count: int) -> list[dict[str, Any]]:
    """The first `count` rows one by one: their values, the output explained and each column's contribution.

    With several outputs (classes), the one explained is the largest: the predicted class.
    """
    explained = attributions.explained
    out = []
    for index in range(min(count, len(rows))):
        output = int(np.argmax(explained[index]))
        contributions = dict(zip(attributions.columns, attributions.values[index, :, output].tolist(), strict=True))
        out.append(
            {
                "row": json_value(rows.index[index]),
                "output": attributions.outputs[output],
                "base": float(attributions.base[output]),
                "explained": float(explained[index, output]),
                "values": {column: json_value(rows.iloc[index][column]) for column in attributions.columns},
                "contributions": dict(sorted(contributions.items(), key=lambda item: -abs(item[1]))),
            }
        )
    return out


def json_value(value: Any) -> Any:
    """A cell as JSON: numpy scalars as Python numbers, a missing value as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
