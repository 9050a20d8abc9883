"""validate: a Great Expectations suite built from the config, run on the input before training."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ... import lineage
from ...errors import CheckFailed
from ..config import Config
from ..dataio import data

if TYPE_CHECKING:  # great_expectations takes 2-3 s to import: only when the stage runs
    from great_expectations.expectations import Expectation
from ...stages import StageResult

log = logging.getLogger(__name__)

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "float16", "float32", "float64", "Int64", "Float64"]
MIN_CLASSES = {"binary": 2, "multiclass": 3}


@dataclass(frozen=True)
class Validated(StageResult):
    path: Path  # the full result of a passing suite, saved for train to log with the run


def expectations(config: Config, frame: pd.DataFrame, require_target: bool = True) -> list[Expectation]:
    """One expectation per rule the config states (or, for an undeclared file, per inferred column).

    `require_target` False (a file to score): the target's expectations are still in the list, for
    the caller to drop when the file has no target."""
    import great_expectations.expectations as gxe  # 2-3 s to import: only this stage needs it

    schema = data.schema(config, frame, require_target=require_target)
    target = config.data.target
    mostly = 1.0 - config.data.max_null_fraction
    suite: list[Expectation] = [gxe.ExpectTableRowCountToBeBetween(min_value=50)]
    # Declared columns are checked even when absent from the file (then they fail ExpectColumnToExist).
    declared = {name: column for name, column in config.data.columns.items() if name != target}
    for name, column in (declared | schema.columns).items():
        suite.append(gxe.ExpectColumnToExist(column=name))
        if column.type == "number":
            suite.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=NUMERIC_TYPES))
            if column.min is not None or column.max is not None:
                suite.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=column.min, max_value=column.max))
        else:
            if name in config.data.columns:  # an inferred text column is whatever the file holds (even booleans)
                suite.append(gxe.ExpectColumnValuesToBeOfType(column=name, type_="str"))
            if column.values and name in config.data.columns:  # inferred values are the file's own
                suite.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=column.values))
        if mostly < 1.0:
            suite.append(gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=mostly))
        else:
            suite.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
    suite.append(gxe.ExpectColumnValuesToNotBeNull(column=target))
    declared_target = config.data.columns.get(target)
    if config.task == "regression":
        suite.append(gxe.ExpectColumnValuesToBeInTypeList(column=target, type_list=NUMERIC_TYPES))
    elif declared_target and declared_target.values:
        suite.append(gxe.ExpectColumnDistinctValuesToBeInSet(column=target, value_set=declared_target.values))
    else:
        suite.append(
            gxe.ExpectColumnUniqueValueCountToBeBetween(
                column=target, min_value=MIN_CLASSES[config.task], max_value=2 if config.task == "binary" else None
            )
        )
    return suite


def case_aliases(names: list[str]) -> dict[str, str]:
    """Names GX must be given another name for: it finds a column by its case-folded name (GX 1.24),
    so of `Sex` and `sex` it would check `Sex` twice. Names that differ only in case get an alias each."""
    folded = Counter(name.casefold() for name in names)
    return {name: f"__column_{index}__" for index, name in enumerate(names) if folded[name.casefold()] > 1}


def run_suite(config: Config, frame: pd.DataFrame) -> dict:
    return suite_runner(config, expectations(config, frame), [str(name) for name in frame.columns])(frame)


def suite_runner(config: Config, suite_items: list[Expectation], columns: list[str]) -> Callable[[pd.DataFrame], dict]:
    """The suite built once, run on any frame with these `columns` (each chunk of a file to score):
    building a context and suite costs about a second, running it on 50,000 rows less."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # In memory only: get_context(mode="ephemeral") alone also configures a data docs site in a
    # temporary folder, which nothing here builds or reads.
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False),  # tqdm bars flood CI logs
        ),
    )
    batch = (
        context.data_sources.add_pandas("input")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("all rows")
    )
    aliases = case_aliases(columns)
    renamed = [
        expectation.copy(update={"column": aliases[column]})  # a pydantic v1 model
        if (column := getattr(expectation, "column", None)) in aliases
        else expectation
        for expectation in suite_items
    ]
    # The whole suite in one call: each suite.add_expectation re-serializes every expectation already
    # in the suite into the store (about a second for the bundled data's 40 expectations).
    suite = context.suites.add(gx.ExpectationSuite(name=f"{config.tracking.model_name}-input", expectations=renamed))
    if len(suite.expectations) != len(renamed):  # the constructor logs and drops what it cannot read
        raise RuntimeError(f"Great Expectations kept {len(suite.expectations)} of {len(renamed)} expectations")
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="input", data=batch, suite=suite))
    names = {alias: name for name, alias in aliases.items()}

    def run(frame: pd.DataFrame) -> dict:
        result = definition.run(batch_parameters={"dataframe": frame.rename(columns=aliases)}).describe_dict()
        for item in result["expectations"]:  # reported under the file's own names
            if item["kwargs"].get("column") in names:
                item["kwargs"]["column"] = names[item["kwargs"]["column"]]
        return result

    return run


def describe_failures(result: dict) -> list[str]:
    failures = []
    for item in result["expectations"]:
        if item["success"]:
            continue
        column = item["kwargs"].get("column", "(table)")
        observed = item["result"].get("observed_value")
        examples = item["result"].get("partial_unexpected_list")
        detail = f"observed {observed!r}" if observed is not None else ""
        if examples:
            detail = f"{item['result'].get('unexpected_count')} bad values, e.g. {examples[:3]}"
        if item["expectation_type"] == "expect_column_values_to_not_be_null":
            share = item["result"].get("unexpected_percent") or 0.0
            allowed = 100 * (1 - item["kwargs"].get("mostly", 1.0))
            detail = f"{share:.2f}% missing; data.max_null_fraction allows {allowed:.2f}%"
        failures.append(f"{column}: {item['expectation_type']} failed ({detail})")
    return failures


def run(config: Config, run_id: str | None = None) -> Validated:
    """Validation comes before any run: `run_id` is not used."""
    path = config.data_path
    frame = data.read_table(path, config.data.csv)
    log.info("validating %s (%d rows, %d columns)", path, len(frame), frame.shape[1])
    result = run_suite(config, frame)
    failures = describe_failures(result)
    if config.data.target in frame.columns and (problem := data.target_problem(frame[config.data.target], config.task)):
        failures.insert(0, f"{config.data.target}: cannot be the target: {problem}")
    config.outputs.mkdir(parents=True, exist_ok=True)
    saved = config.outputs / lineage.VALIDATION_FILE
    saved.write_text(
        json.dumps(
            {
                "success": not failures,
                "data": str(path),
                "sha256": data.fingerprint(path),
                "failures": failures,
                "result": result,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    if failures:
        record_rejection(config, saved)
        raise CheckFailed(
            f"{path}: {len(failures)} expectation(s) failed:\n  " + "\n  ".join(failures) + f"\nfull result: {saved}"
        )
    log.info("validation passed: %d expectations", len(result["expectations"]))
    return Validated(run_id=None, path=saved)


def record_rejection(config: Config, result: Path) -> None:
    """A rejected file gets a short run of its own: no model, but the evidence stays in MLflow."""
    import mlflow

    from ... import tracking

    client = tracking.connect(config)
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(config, client),
        run_name="rejected-data",
        tags={lineage.stage_tag("validate"): lineage.FAILED, lineage.GIT_SHA: lineage.git_sha(config.root)},
    ):
        mlflow.log_artifact(str(result), lineage.VALIDATION_FOLDER)
        mlflow.log_param("data.path", config.data_path.name)


def current(config: Config) -> Validated | None:
    """The saved result, when it is a pass for exactly the data file in use now."""
    saved = config.outputs / lineage.VALIDATION_FILE
    if not saved.is_file():
        return None
    result = json.loads(saved.read_text())
    if result["success"] and result["sha256"] == data.fingerprint(config.data_path):
        return Validated(run_id=None, path=saved)
    return None
