"""Model-agnostic SHAP values: Shapley values estimated over random orders of the input columns.

For any model that predicts from a table (Framework.predict): a column is "unknown" when it takes
the background rows' values instead of the row's own, and a column's value is the mean change in
the output when it becomes known, over random orders in which the columns become known (each order
also taken in reverse, which cancels much of the sampling noise). Every order's changes add up to the
row's output minus the background's mean output, so the values are exactly additive whatever the
number of orders. This is the estimator of shap's PermutationExplainer with its Independent masker,
written here over whole columns: a category is masked as one column (never a one-hot pattern no row
can have), string columns need no encoding, and all rows go through `predict` in a few large
batches. (shap's own explainer compiles numba code on first use, several seconds per process.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .attributions import Attributions
from .predictions import ClassPredictions, Predictions

# Rows given to `predict` at a time: rows explained x orders x (columns + 1) x background rows.
BATCH_ROWS = 50_000


def outputs(classes: list) -> list[str]:
    """What the explained outputs are: the positive class's probability for two classes, each class's otherwise."""
    if not classes:
        return ["value"]
    if len(classes) == 2:
        return [f"probability of {classes[1]!r}"]
    return [f"probability of {label!r}" for label in classes]


def as_matrix(predicted: Predictions, classes: list) -> np.ndarray:
    """(rows, outputs) of the explained outputs."""
    if isinstance(predicted, ClassPredictions):
        probabilities = np.asarray(predicted.probabilities, dtype=np.float64)
        return probabilities[:, 1:] if len(classes) == 2 else probabilities
    return np.asarray(predicted.values, dtype=np.float64).reshape(-1, 1)


def permutation_shapley(
    predict: Callable[[pd.DataFrame], Predictions],
    rows: pd.DataFrame,
    background: pd.DataFrame,
    classes: list,
    orders: int,
    seed: int,
) -> Attributions:
    """SHAP values of `rows`' columns for `predict`, against `background`, from `orders` random orders per row."""
    if list(rows.columns) != list(background.columns) or len(background) == 0:
        raise ValueError("the rows and the (non-empty) background must have the same columns")
    rng = np.random.default_rng(seed)
    count, width = rows.shape
    drawn = np.stack([rng.permuted(np.tile(np.arange(width), (count, 1)), axis=1) for _ in range(orders)], axis=1)
    order = np.concatenate([drawn, drawn[:, :, ::-1]], axis=1)  # (rows, orders, columns), each also reversed
    step = np.argsort(order, axis=2)  # step[i, o, c]: when column c becomes known in row i's order o
    # known[i, o, s, c]: after s steps of order o, row i's column c has its own value (else the background's).
    known = step[:, :, np.newaxis, :] < np.arange(width + 1)[np.newaxis, np.newaxis, :, np.newaxis]

    per_row = known.shape[1] * known.shape[2] * len(background)
    chunk = max(1, BATCH_ROWS // per_row)
    means: list[np.ndarray] = []
    for start in range(0, count, chunk):
        mask = known[start : start + chunk]
        mixed = {
            column: np.where(
                mask[..., position, np.newaxis],
                rows[column].to_numpy()[start : start + chunk, np.newaxis, np.newaxis, np.newaxis],
                background[column].to_numpy()[np.newaxis, np.newaxis, np.newaxis, :],
            ).reshape(-1)
            for position, column in enumerate(rows.columns)
        }
        frame = pd.DataFrame(mixed).astype(rows.dtypes.to_dict())
        output = as_matrix(predict(frame), classes)
        means.append(output.reshape(*mask.shape[:3], len(background), -1).mean(axis=3))
    value = np.concatenate(means)  # (rows, orders, steps, outputs): mean output after each step
    gained = value[:, :, 1:] - value[:, :, :-1]  # step s makes column order[i, o, s] known
    shapley = np.take_along_axis(gained, step[..., np.newaxis], axis=2).mean(axis=1)
    return Attributions(
        values=shapley,
        base=value[:, :, 0].mean(axis=(0, 1)),
        columns=list(rows.columns),
        outputs=outputs(classes),
        method=(
            f"permutation SHAP over the input columns ({orders} random orders per row, each also reversed; "
            f"{len(background)} background rows)"
        ),
    )
