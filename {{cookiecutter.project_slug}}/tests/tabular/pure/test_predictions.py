"""Predictions of a table in slices of rows: the same as the whole table at once, in row order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.tabular.pure.predictions import ClassPredictions, ValuePredictions, in_chunks

# --- predictions in slices of rows ---------------------------------------------------------------


def test_predictions_in_chunks_are_the_whole_table_in_row_order():
    frame = pd.DataFrame({"x": np.arange(7.0)})

    def classify(rows):
        return ClassPredictions(np.where(rows["x"] > 3, "yes", "no"), np.column_stack([rows["x"], -rows["x"]]))

    whole, chunked = classify(frame), in_chunks(classify, frame, rows=3)
    assert np.array_equal(chunked.labels, whole.labels)
    assert np.array_equal(chunked.probabilities, whole.probabilities)
    values = in_chunks(lambda rows: ValuePredictions(rows["x"].to_numpy()), frame, rows=2)
    assert np.array_equal(values.values, np.arange(7.0))
