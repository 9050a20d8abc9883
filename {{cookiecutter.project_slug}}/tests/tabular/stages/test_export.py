"""export's parity check between the native model's predictions and onnxruntime's, case by case.

The numbers are chosen exact in binary floating point (0.75, 0.0625, ...), so "exactly at the bound"
means exactly, not within rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.tabular.pure.predictions import ClassPredictions, ValuePredictions
from {{ cookiecutter.package_name }}.tabular.stages import export

# --- export: parity between the native model and ONNX ---------------------------------------------


def classified(labels, probabilities) -> ClassPredictions:
    return ClassPredictions(np.asarray(labels), np.asarray(probabilities, dtype=np.float64))


def regressed(values) -> ValuePredictions:
    return ValuePredictions(np.asarray(values, dtype=np.float64))


def test_identical_classifications_have_no_problem():
    native = classified([0, 1], [[0.75, 0.25], [0.25, 0.75]])
    assert export.parity(native, native, 1e-4) == (0.0, [])


def test_labels_compare_as_text_whatever_their_dtype():
    native = classified([0, 1], [[0.75, 0.25], [0.25, 0.75]])
    exported = classified(["0", "1"], [[0.75, 0.25], [0.25, 0.75]])
    assert export.parity(native, exported, 1e-4) == (0.0, [])


def test_differing_labels_are_counted():
    native = classified(["a", "b", "c"], [[1, 0], [0, 1], [1, 0]])
    exported = classified(["a", "c", "b"], [[1, 0], [0, 1], [1, 0]])
    assert export.parity(native, exported, 1e-4)[1] == ["2 labels differ"]


@pytest.mark.parametrize(
    ("expected", "actual", "tolerance", "over"),
    [
        ([0.5], [0.5 + 2**-10], 2**-9, 0),  # probabilities and values below 1: absolute
        ([0.5], [0.5 + 2**-9], 2**-9, 0),  # exactly at the tolerance passes
        ([0.5], [0.5 + 2**-8], 2**-9, 1),
        ([16.0], [16.0 + 2**-6], 2**-9, 0),  # above 1: relative to size (allowed 16 * 2**-9)
        ([16.0], [16.0 + 2**-5], 2**-9, 0),  # exactly at the relative bound
        ([16.0], [16.0 + 2**-4], 2**-9, 1),
        ([-16.0], [-16.0 - 2**-5], 2**-9, 0),  # size is the absolute value
        ([0.5, 16.0, 4.0], [0.5 + 2**-8, 16.0 + 2**-4, 4.0], 2**-9, 2),
    ],
)
def test_regression_values_within_tolerance_relative_to_size(expected, actual, tolerance, over):
    worst, problems = export.parity(regressed(expected), regressed(actual), tolerance)
    assert worst == max(abs(a - e) for a, e in zip(actual, expected, strict=True))
    if over:
        assert problems == [f"{over} values differ by more than {tolerance:g} (max {worst:.3g})"]
    else:
        assert problems == []


def test_values_of_shape_n_by_1_compare_with_flat_values():
    worst, problems = export.parity(regressed([[1.0], [2.0]]), regressed([1.0, 2.0]), 1e-4)
    assert (worst, problems) == (0.0, [])


def test_probabilities_over_tolerance_and_wrong_labels_are_both_reported():
    native = classified([0, 1], [[0.75, 0.25], [0.25, 0.75]])
    exported = classified([0, 0], [[0.75, 0.25], [0.5, 0.5]])
    worst, problems = export.parity(native, exported, 1e-4)
    assert worst == 0.25
    assert problems == ["1 labels differ", "2 values differ by more than 0.0001 (max 0.25)"]
