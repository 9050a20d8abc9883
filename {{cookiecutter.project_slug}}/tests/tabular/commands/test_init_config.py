"""init-config on small awkward tables: the config it writes loads, says what the file holds, and passes validate.

No training here: each table is validated only (a few seconds in all).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.tabular.commands import init_config
from {{ cookiecutter.package_name }}.tabular.dataio import data
from {{ cookiecutter.package_name }}.tabular.stages import validate

PROJECT = Path(__file__).resolve().parents[3]
ROWS = 80  # validate wants at least 50


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """init-config writes beside the working directory and reads ./config.yaml when there is one."""
    monkeypatch.chdir(tmp_path)


def init(*args: str) -> int:
    return main(["init-config", *args])


def written(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def awkward_csv(path: Path) -> None:
    """`;`-separated, '?' for missing, names YAML and Python both dislike, labels with stray spaces."""
    header = ["Age", "marital-status", "native country", "income/yr", "a.b", "1st", "ñandú", "yes", "# of loans"]
    header += ["Sex", "sex", "has_car", "label"]
    lines = [";".join(header)]
    for i in range(ROWS):
        age = "?" if i % 10 == 0 else str(18 + i % 50)  # 10% missing
        status = ["married", "single", "divorced"][i % 3]
        country = "?" if i == 3 else ["Peru", "Chile"][i % 2]
        income = f"{1000 + 12.5 * i}"
        label = " >50K" if i % 4 == 0 else "<=50K "
        row = [age, status, country, income, str(i % 7), str(i), f"v{i % 4}", "y", str(i % 3)]
        row += [["F", "M"][i % 2], ["f", "m"][i % 2], ["True", "False"][i % 2], label]
        lines.append(";".join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_an_awkward_csv_gets_a_config_that_passes_validation(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    awkward_csv(tmp_path / "people.csv")
    assert init("--data", "people.csv", "--target", "label", "--missing", "?") == 0

    path = tmp_path / "config.people.yaml"
    raw = written(path)
    assert raw["task"] == "binary"
    assert raw["data"]["path"] == "people.csv"
    assert raw["data"]["csv"] | {} == {
        "separator": ";",  # sniffed
        "missing_values": ["?"],
        "strip_whitespace": True,
        "encoding": "utf-8",
    }
    columns = raw["data"]["columns"]
    # Every name read back exactly (quoted where YAML needs it), the boolean left to inference.
    assert list(columns) == [
        "Age", "marital-status", "native country", "income/yr", "a.b", "1st", "ñandú", "yes", "# of loans",
        "Sex", "sex", "label",
    ]  # fmt: skip
    assert columns["Age"] == {"type": "number", "min": 19, "max": 67}
    assert columns["income/yr"] == {"type": "number", "min": 1000, "max": 1987.5}
    assert columns["marital-status"] == {"type": "string", "values": ["divorced", "married", "single"]}
    assert columns["label"] == {"type": "string", "values": ["<=50K", ">50K"]}  # stripped as read
    assert "has_car" not in columns and "has_car" in path.read_text()
    # Age is missing in 10% of rows: the allowance is just above, so this very file passes.
    assert raw["data"]["max_null_fraction"] == 0.11
    # Sensitive columns are suggested, not switched on.
    assert raw["data"]["sensitive_features"] == []
    text = path.read_text()
    assert "  # sensitive_features: [Age, marital-status, native country, Sex, sex]\n" in text
    assert raw["gate"]["thresholds"] == {} and raw["gate"]["no_regression"] == []
    assert "#   test.roc_auc: {min: 0.8}" in text and "fairness.marital-status.demographic_parity_difference" in text
    assert "pipeline --config config.people.yaml" in caplog.text

    loaded = config.load(path)
    assert loaded.model.framework == config.load(PROJECT / "config.yaml").model.framework  # the one baked
    assert validate.run(loaded).path.is_file()


def test_the_commented_suggestions_are_valid_when_uncommented(tmp_path):
    awkward_csv(tmp_path / "people.csv")
    assert init("--data", "people.csv", "--target", "label", "--missing", "?") == 0
    text = (tmp_path / "config.people.yaml").read_text()
    uncommented = text.replace("  # sensitive_features: [", "  sensitive_features: [").replace(
        "  sensitive_features: []        #", "  #"
    )
    for line in ("thresholds:", "  test.roc_auc:", "  test.accuracy:", "  fairness.", "no_regression:"):
        uncommented = uncommented.replace(f"  # {line}", f"  {line}")
    for empty in ("  thresholds: {}\n", "  no_regression: []\n"):
        uncommented = uncommented.replace(empty, "")
    (tmp_path / "uncommented.yaml").write_text(uncommented)
    loaded = config.load(tmp_path / "uncommented.yaml")
    assert loaded.data.sensitive_features == ["Age", "marital-status", "native country", "Sex", "sex"]
    assert set(loaded.gate.thresholds) == {
        "test.roc_auc",
        "test.accuracy",
        "fairness.marital-status.demographic_parity_difference",
    }
    assert loaded.gate.no_regression == ["test.roc_auc"]


def test_columns_differing_only_in_case_are_validated_each_as_itself(tmp_path):
    # Great Expectations finds columns by case-folded name: validate gives it distinct aliases.
    awkward_csv(tmp_path / "people.csv")
    assert init("--data", "people.csv", "--target", "label", "--missing", "?") == 0
    raw = written(tmp_path / "config.people.yaml")
    raw["data"]["columns"]["sex"]["values"] = ["f"]
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    loaded = config.load(tmp_path / "edited.yaml")
    failures = validate.describe_failures(
        validate.run_suite(loaded, data.read_table(loaded.data_path, loaded.data.csv))
    )
    assert len(failures) == 1
    assert failures[0].startswith("sex: expect_column_values_to_be_in_set failed (40 bad values, e.g. ['m'")


def test_parquet_with_string_labels_dates_and_an_empty_column(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "grade": [" low", "mid ", "high"] * (ROWS // 3) + ["mid "] * (ROWS % 3),  # multiclass, untrimmed
            "score": rng.normal(size=ROWS),
            "code": rng.integers(1, 5, size=ROWS),
            "city": [f"c{i}" for i in range(ROWS)],  # more than 50 distinct: no `values`
            "seen": pd.date_range("2024-01-01", periods=ROWS, freq="D"),
            "notes": [None] * ROWS,
        }
    )
    frame.to_parquet(tmp_path / "grades.parquet")
    assert init("--data", "grades.parquet", "--target", "grade") == 0

    raw = written(tmp_path / "config.grades.yaml")
    assert raw["task"] == "multiclass"
    assert "csv" not in raw["data"]
    assert raw["data"]["features"] == ["score", "code", "city", "seen"]  # `notes` has no value at all
    columns = raw["data"]["columns"]
    assert columns["grade"] == {"type": "string", "values": [" low", "high", "mid "]}  # as validate sees them
    assert columns["city"] == {"type": "string"}
    assert columns["code"] == {"type": "number", "min": 1, "max": 4}
    assert "seen" not in columns
    validate.run(config.load(tmp_path / "config.grades.yaml"))


def test_a_regression_target_and_the_project_settings(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "tables"
    folder.mkdir()
    pd.DataFrame(
        {
            "size": rng.uniform(20, 200, ROWS).round(1),
            "rooms": rng.integers(1, 6, ROWS),
            "price": rng.uniform(1, 9, ROWS),
        }
    ).to_csv(folder / "houses.csv", index=False)
    (tmp_path / "configs").mkdir()
    output = tmp_path / "configs" / "houses.yaml"
    code = init(
        "--data", str(folder / "houses.csv"), "--target", "price", "--output", str(output),
        "--config", str(PROJECT / "config.yaml"),
    )  # fmt: skip
    assert code == 0

    raw = written(output)
    assert raw["task"] == "regression"
    assert raw["data"]["path"] == str(folder / "houses.csv")  # not under the config's folder: absolute
    assert raw["data"]["columns"]["price"]["type"] == "number"
    assert "#   test.rmse: {max: " in output.read_text()
    project = config.load(PROJECT / "config.yaml")
    loaded = config.load(output)
    assert (loaded.model, loaded.split, loaded.tracking) == (project.model, project.split, project.tracking)
    validate.run(loaded)


def test_task_override_and_targets_it_cannot_have(tmp_path, capsys):
    pd.DataFrame({"x": range(ROWS), "level": [i % 4 for i in range(ROWS)], "same": ["a"] * ROWS}).to_csv(
        "codes.csv", index=False
    )
    assert init("--data", "codes.csv", "--target", "level") == 0
    assert written(tmp_path / "config.codes.yaml")["task"] == "multiclass"  # 4 whole-number codes

    assert init("--data", "codes.csv", "--target", "level", "--task", "regression", "--force") == 0
    assert written(tmp_path / "config.codes.yaml")["task"] == "regression"

    assert init("--data", "codes.csv", "--target", "level", "--task", "binary", "--output", "b.yaml") == 2
    assert "task is binary but it has 4 classes" in capsys.readouterr().err

    assert init("--data", "codes.csv", "--target", "same", "--output", "same.yaml") == 2
    assert "'same' cannot be the target: it has only one class ('a')" in capsys.readouterr().err
    assert not (tmp_path / "same.yaml").exists() and not (tmp_path / "b.yaml").exists()


def test_an_existing_config_is_not_replaced_without_force(tmp_path, capsys):
    pd.DataFrame({"x": range(ROWS), "y": [i % 2 for i in range(ROWS)]}).to_csv("t.csv", index=False)
    (tmp_path / "config.t.yaml").write_text("mine\n")
    assert init("--data", "t.csv", "--target", "y") == 2
    assert "config.t.yaml exists: pass --force" in capsys.readouterr().err
    assert (tmp_path / "config.t.yaml").read_text() == "mine\n"
    assert init("--data", "t.csv", "--target", "y", "--force") == 0
    assert written(tmp_path / "config.t.yaml")["task"] == "binary"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("sex", True),
        ("Gender", True),
        ("marital-status", True),
        ("native-country", True),
        ("ApplicantAge", True),
        ("age_group", True),
        ("RACE", True),
        ("mortgage", False),
        ("stage", False),
        ("wage", False),
        ("trace_id", False),
    ],
)
def test_sensitive_columns_are_recognised_by_the_words_of_their_name(name, sensitive):
    assert init_config.likely_sensitive([name]) == ([name] if sensitive else [])


@pytest.mark.parametrize(
    ("share", "allowed"), [(0.0, 0.0), (0.001, 0.01), (0.07, 0.08), (0.0734, 0.08), (0.995, 1.0), (1.0, 1.0)]
)
def test_the_null_allowance_is_the_observed_share_rounded_up(share, allowed):
    assert init_config.null_allowance(share) == allowed


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1] * 5, "binary"),
        ([True, False] * 5, "binary"),
        (["yes", "no ", " yes"] * 3, "binary"),  # labels compare stripped
        ([1, 2, 3] * 4, "multiclass"),
        (["a", "b", "c"] * 3, "multiclass"),
        ([0.5, 1.0] * 5, "regression"),  # not whole
        (list(range(30)), "regression"),  # many whole numbers
    ],
)
def test_the_task_is_guessed_from_the_target(values, task):
    assert init_config.guess_task(pd.Series(values, name="y"))[0] == task
