"""The pure functions behind the checks, case by case: no MLflow run, no model, a few seconds in all.

The numbers are chosen exact in binary floating point (0.75, 0.0625, ...), so "exactly at the bound"
means exactly, not within rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.config import Gate, Threshold, Tracking
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.ops import container, github_ci, registry
from {{ cookiecutter.package_name }}.stages import gate
from {{ cookiecutter.package_name }}.tabular.config import Column, Config, Data, Model
from {{ cookiecutter.package_name }}.tabular.dataio import data
from {{ cookiecutter.package_name }}.tabular.pure import metrics
from {{ cookiecutter.package_name }}.tabular.pure.predictions import ClassPredictions, ValuePredictions, in_chunks
from {{ cookiecutter.package_name }}.tabular.stages import export, validate

RUN = "0123456789abcdef0123456789abcdef"
DIGEST = "ab" * 32


def config(thresholds=None, no_regression=(), tolerance=0.0625, **data_fields) -> Config:
    fields = {"path": Path("table.csv"), "target": "y"} | data_fields
    return Config(
        task="binary",
        data=Data(**fields),
        model=Model(framework="sklearn"),
        gate=Gate(
            thresholds={name: Threshold(**bound) for name, bound in (thresholds or {}).items()},
            no_regression=list(no_regression),
            regression_tolerance=tolerance,
        ),
        tracking=Tracking(experiment="units", model_name="units"),
    )


# --- gate: thresholds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "value", "passed", "text"),
    [
        ({"min": 0.75}, 0.8125, True, ">= 0.75"),
        ({"min": 0.75}, 0.75, True, ">= 0.75"),  # bounds are inclusive
        ({"min": 0.75}, 0.6875, False, ">= 0.75"),
        ({"max": 0.25}, 0.125, True, "<= 0.25"),
        ({"max": 0.25}, 0.25, True, "<= 0.25"),
        ({"max": 0.25}, 0.375, False, "<= 0.25"),
        ({"min": 0.5, "max": 0.75}, 0.625, True, ">= 0.5 and <= 0.75"),
        ({"min": 0.5, "max": 0.75}, 0.375, False, ">= 0.5 and <= 0.75"),
        ({"min": 0.5, "max": 0.75}, 0.875, False, ">= 0.5 and <= 0.75"),
    ],
)
def test_threshold_bounds(bound, value, passed, text):
    [check] = gate.threshold_checks(config({"test.f1": bound}), {"test.f1": value}, {})
    assert (check.name, check.value, check.passed, check.threshold) == ("test.f1", value, passed, text)
    assert check.champion is None


def test_a_threshold_on_a_metric_the_run_did_not_log_fails_and_says_so():
    [check] = gate.threshold_checks(config({"test.roc_auc": {"min": 0.5}}), {"test.f1": 0.9}, {})
    assert not check.passed and check.value is None
    assert check.threshold == ">= 0.5 (metric not logged by this run)"


def test_threshold_checks_carry_the_champion_value_for_the_report():
    checks = gate.threshold_checks(
        config({"test.f1": {"min": 0.5}, "test.recall": {"min": 0.5}}),
        {"test.f1": 0.75, "test.recall": 0.75},
        {"test.f1": 0.8125},
    )
    assert [(c.name, c.champion) for c in checks] == [("test.f1", 0.8125), ("test.recall", None)]


# --- gate: no regression against the champion ------------------------------------------------------


def test_no_champion_means_no_regression_checks():
    assert gate.regression_checks(config(no_regression=["test.f1"]), {"test.f1": 0.1}, {}) == []


def test_a_metric_the_champion_never_logged_is_not_compared():
    checks = gate.regression_checks(
        config(no_regression=["test.f1", "test.recall"]), {"test.f1": 0.75, "test.recall": 0.1}, {"test.f1": 0.75}
    )
    assert [c.name for c in checks] == ["test.f1 vs champion"]


@pytest.mark.parametrize(
    ("metric", "champion", "value", "passed"),
    [
        # higher is better: at most `tolerance` (0.0625) below the champion
        ("test.f1", 0.75, 0.8125, True),
        ("test.f1", 0.75, 0.75, True),
        ("test.f1", 0.75, 0.6875, True),  # exactly champion - tolerance
        ("test.f1", 0.75, 0.625, False),
        # lower is better: at most `tolerance` above the champion
        ("test.log_loss", 0.5, 0.375, True),
        ("test.log_loss", 0.5, 0.5625, True),  # exactly champion + tolerance
        ("test.log_loss", 0.5, 0.625, False),
        ("fairness.sex.demographic_parity_difference", 0.125, 0.1875, True),
        ("fairness.sex.demographic_parity_difference", 0.125, 0.25, False),
        ("test.rmse", 2.0, 2.0625, True),
        ("test.rmse", 2.0, 2.125, False),
    ],
)
def test_regression_tolerance_and_direction(metric, champion, value, passed):
    [check] = gate.regression_checks(config(no_regression=[metric]), {metric: value}, {metric: champion})
    assert check.passed is passed
    assert (check.value, check.champion) == (value, champion)
    sign = "<=" if metrics.lower_is_better(metric) else ">="
    assert check.threshold.startswith(f"{sign} ") and f"champion {champion:.4g}" in check.threshold


def test_zero_tolerance_admits_an_equal_value_only():
    checks = gate.regression_checks(
        config(no_regression=["test.f1"], tolerance=0.0), {"test.f1": 0.75}, {"test.f1": 0.75}
    )
    assert checks[0].passed
    checks = gate.regression_checks(
        config(no_regression=["test.f1"], tolerance=0.0), {"test.f1": 0.7499}, {"test.f1": 0.75}
    )
    assert not checks[0].passed


def test_a_metric_the_champion_has_but_this_run_lacks_fails():
    [check] = gate.regression_checks(config(no_regression=["test.f1"]), {}, {"test.f1": 0.75})
    assert not check.passed and check.value is None and check.champion == 0.75


# --- gate: the report ------------------------------------------------------------------------------


def test_render_a_failed_gate_with_a_champion():
    checks = [
        gate.Check("test.f1", 0.75, ">= 0.5", True, 0.8),
        gate.Check("test.roc_auc", None, ">= 0.5 (metric not logged by this run)", False),
    ]
    report = gate.render(checks, False, RUN, "3", "credit")
    lines = report.splitlines()
    assert lines[0] == "## Gate: FAILED - credit"
    assert lines[2] == f"Run `{RUN}`; champion: version 3."
    assert lines[-2:] == [
        "| test.f1 | 0.7500 | >= 0.5 | 0.8000 | pass |",
        "| test.roc_auc | n/a | >= 0.5 (metric not logged by this run) | n/a | **FAIL** |",
    ]
    assert report.endswith("\n")


def test_render_a_first_model_without_checks():
    report = gate.render([], True, RUN, None, "credit")
    assert report.startswith("## Gate: PASSED - credit")
    assert "champion: none yet." in report
    assert report.splitlines()[-1] == "|---|---:|---|---:|---|"  # header only


# --- metric direction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "lower"),
    [
        ("test.log_loss", True),
        ("log_loss", True),
        ("test.rmse", True),
        ("test.mae", True),
        ("test.brier_score", True),
        ("fairness.sex.demographic_parity_difference", True),
        ("fairness.age_group.equalized_odds_difference", True),
        ("test.accuracy", False),
        ("test.roc_auc", False),
        ("test.f1_macro", False),
        ("test.r2", False),
        ("fairness.sex.demographic_parity_ratio", False),
        ("test.log_loss_ratio", False),
    ],
)
def test_lower_is_better(key, lower):
    assert metrics.lower_is_better(key) is lower


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


# --- data: the schema the model is trained on -----------------------------------------------------


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30, 40, 50],
            "city": ["b", "a", None],
            "member": [True, False, True],
            "score": [0.5, 1.5, np.nan],
            "y": [0, 1, 0],
        }
    )


def test_columns_are_inferred_in_file_order_without_the_target():
    schema = data.schema(config(), frame())
    assert schema.features == ["age", "city", "member", "score"]
    assert schema.numeric == ["age", "score"]
    assert schema.categorical == ["city", "member"]  # booleans are categories, not numbers
    assert schema.columns["city"].values == ["a", "b"]  # sorted, missing values left out
    assert schema.columns["member"].values == ["False", "True"]
    assert (schema.task, schema.target, schema.sensitive) == ("binary", "y", [])


def test_configured_features_and_declared_columns_win_over_inference():
    declared = {"age": Column(type="string", values=["30", "40", "50"])}
    schema = data.schema(config(features=["score", "age"], columns=declared), frame())
    assert schema.features == ["score", "age"]
    assert schema.columns["age"] == declared["age"]


def test_a_declared_column_missing_from_the_file_is_left_to_validation():
    declared = {"income": Column(type="number", min=0)}
    schema = data.schema(config(features=["age", "income"], columns=declared), frame())
    assert schema.columns["income"] == declared["income"]


def test_sensitive_features_absent_from_the_file_are_dropped():
    schema = data.schema(config(sensitive_features=["city", "sex"]), frame())
    assert schema.sensitive == ["city"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "label"}, "data.target: column 'label' is not in table.csv"),
        ({"features": ["age", "y"]}, "data.features: the target 'y' cannot also be a feature"),
        ({"features": ["age", "income"]}, "data.features: income not in table.csv and not declared"),
    ],
)
def test_schema_errors_name_the_setting_to_change(fields, message):
    with pytest.raises(UsageError, match=message):
        data.schema(config(**fields), frame())


# --- validate: failure summaries ------------------------------------------------------------------


def expectation(kind, success, column=None, **result):
    return {
        "expectation_type": kind,
        "success": success,
        "kwargs": {"column": column} if column else {},
        "result": result,
    }


def test_passing_expectations_are_not_reported():
    assert validate.describe_failures({"expectations": [expectation("expect_column_to_exist", True, "age")]}) == []


def test_each_failure_names_its_column_and_what_was_seen():
    result = {
        "expectations": [
            expectation("expect_column_to_exist", True, "age"),
            expectation(
                "expect_column_values_to_be_between",
                False,
                "age",
                unexpected_count=5,
                partial_unexpected_list=[7, 8, 9, 10],
            ),
            expectation("expect_table_row_count_to_be_between", False, observed_value=12),
            expectation("expect_column_unique_value_count_to_be_between", False, "y", observed_value=0),
            expectation("expect_column_to_exist", False, "income"),
        ]
    }
    assert validate.describe_failures(result) == [
        "age: expect_column_values_to_be_between failed (5 bad values, e.g. [7, 8, 9])",
        "(table): expect_table_row_count_to_be_between failed (observed 12)",
        "y: expect_column_unique_value_count_to_be_between failed (observed 0)",  # 0 is a value, not "none"
        "income: expect_column_to_exist failed ()",
    ]


# --- CI glue: job outputs and what may ship ------------------------------------------------------


def test_checked_outputs_become_lines_in_order():
    assert github_ci.checked({"run_id": RUN, "verdict": "", "onnx_sha256": DIGEST}) == (
        f"run_id={RUN}\nverdict=\nonnx_sha256={DIGEST}\n"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"run": RUN}, "not one of"),
        ({"run_id": RUN + "\nverdict=passed"}, "must match"),
        ({"run_id": RUN.upper()}, "must match"),
        ({"verdict": "maybe"}, "must match"),
        ({"model_version": "0"}, "must match"),
        ({"path": "outputs/model onnx"}, "must match"),
        ({"mode": ""}, "must match"),
    ],
)
def test_checked_refuses_unknown_keys_and_values_of_the_wrong_shape(values, message):
    with pytest.raises(UsageError, match=message):
        github_ci.checked(values)


TRUSTED = {
    "source_ref": registry.PROTECTED_REF,
    "gate.verdict": "passed",
    "export.parity": "passed",
    "onnx.sha256": DIGEST,
}


@pytest.mark.parametrize(
    ("change", "protected_ref", "problem"),
    [
        ({}, registry.PROTECTED_REF, None),
        ({"source_ref": "refs/heads/feature"}, None, None),  # None: the caller compares refs itself
        ({"source_ref": "refs/heads/feature"}, registry.PROTECTED_REF, "registered from refs/heads/feature"),
        ({"source_ref": None}, registry.PROTECTED_REF, "registered from an unknown ref"),
        ({"gate.verdict": "failed"}, None, "gate verdict is failed"),
        ({"gate.verdict": None}, None, "gate verdict is missing"),
        ({"export.parity": "failed"}, None, "ONNX parity check is failed"),
        ({"export.parity": None}, None, "ONNX parity check is missing"),
        ({"onnx.sha256": None}, None, "no ONNX digest"),
        ({"onnx.sha256": DIGEST.upper()}, None, "no ONNX digest"),
        ({"onnx.sha256": DIGEST[:-1]}, None, "no ONNX digest"),
    ],
)
def test_trust_problems(change, protected_ref, problem):
    tags = {key: value for key, value in (TRUSTED | change).items() if value is not None}
    problems = lineage.trust_problems(tags, protected_ref)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_a_run_with_no_tags_has_every_problem():
    assert len(lineage.trust_problems({}, registry.PROTECTED_REF)) == 4


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


def test_image_run_publishes_on_loopback_unless_told(monkeypatch):
    from {{ cookiecutter.package_name }}.cli import parser

    monkeypatch.delenv("IMAGE_BIND", raising=False)
    args = parser().parse_args(["image-run", "--port", "18080"])
    assert container.published(args.port, args.bind) == {"8000/tcp": ("127.0.0.1", 18080)}
    args = parser().parse_args(["image-run", "--bind", "0.0.0.0"])
    assert container.published(args.port, args.bind)["8000/tcp"][0] == "0.0.0.0"
