"""validate's failure summaries: each failed Great Expectations check becomes a line naming its column."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.tabular.stages import validate

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
