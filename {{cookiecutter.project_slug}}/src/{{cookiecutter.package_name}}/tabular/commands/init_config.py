"""init-config: a complete config for a new table, inferred from the file in one command.

    python -m {{ cookiecutter.package_name }} init-config --data adult.csv --target income

Three steps, the first two pure: `infer` reads what the table holds (task, column rules, nulls, likely
sensitive columns), `render` turns that and the project's own settings into commented YAML, and
`write` checks the text with config.load before it replaces anything. What only the user can decide
(gate thresholds, which groups to audit) is written as commented examples, never switched on.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import importlib.util
import itertools
import logging
import lzma
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd
import yaml

from ... import config as core_config
from ...errors import UsageError
from .. import config as configuration
from .. import frameworks
from ..config import Column, Csv, Task
from ..dataio import data

log = logging.getLogger(__name__)

MAX_CATEGORIES = 50  # a text column with more distinct values is declared without `values`
MAX_CLASS_CODES = 20  # a whole-number target with more distinct values is guessed to be a regression
MANY_NULLS = 0.1  # share of missing values worth a line in the log
# Words that make a column likely sensitive, matched against the words of its name (case-insensitive):
# `marital-status` and `ApplicantAge` match, `mortgage` and `stage` do not.
SENSITIVE_WORDS = frozenset(
    {
        "sex", "gender", "race", "racial", "ethnicity", "ethnic", "age", "agegroup", "religion", "religious",
        "nationality", "native", "citizenship", "marital", "disability", "disabled", "pregnancy", "pregnant",
        "orientation", "caste", "veteran", "birth", "dob",
    }
)  # fmt: skip
# Cells that often mean "missing" in published tables but that pandas reads as text.
LIKELY_MISSING = ("?", "-", "--", ".")
EXAMPLE_FEATURE = "<feature>"


@dataclass(frozen=True)
class Inferred:
    """What the table says about itself; everything `render` needs besides the project's settings."""

    rows: int
    width: int  # columns in the file
    target: str
    task: Task
    why: str  # how the task was guessed, for the log and a comment
    columns: dict[str, Column]  # rules to declare, in file order, the target included
    undeclared: dict[str, str]  # feature -> its kind (boolean, datetime...): left to inference
    features: list[str]  # in file order, all but the target and the empty ones
    empty: list[str]  # feature columns without a single value: left out of the features
    null_shares: dict[str, float]  # feature -> share of missing values, for those that have any
    sensitive: list[str]  # likely sensitive by name: suggested, not switched on
    target_scale: float | None = None  # a regression target's standard deviation, for the gate example
    hints: list[str] = field(default_factory=list)  # things worth a look, for the log

    @property
    def max_null_fraction(self) -> float:
        return null_allowance(max(self.null_shares.values(), default=0.0))


# --- infer: pure functions of the table ------------------------------------------------------------


def plain(value: Any) -> Any:
    """A numpy scalar as the Python number YAML writes; whole floats as ints (18.0 -> 18)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def guess_task(values: pd.Series) -> tuple[Task, str]:
    """binary, multiclass or regression for this target column, and why."""
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        distinct = present.nunique()
        if not (present == present.round()).all():
            return "regression", "holds numbers that are not whole"
        if distinct > MAX_CLASS_CODES:
            return "regression", f"holds {distinct} distinct whole numbers (more than {MAX_CLASS_CODES})"
        if distinct == 2:
            return "binary", f"holds 2 codes ({', '.join(str(plain(v)) for v in sorted(present.unique()))})"
        return "multiclass", f"holds {distinct} whole-number codes (at most {MAX_CLASS_CODES})"
    classes = sorted(data.labels(present).astype(str).unique().tolist())
    shown = ", ".join(repr(c) for c in classes[:5]) + (" ..." if len(classes) > 5 else "")
    if len(classes) == 2:
        return "binary", f"holds 2 classes ({shown})"
    return "multiclass", f"holds {len(classes)} classes ({shown})"


def check_target(values: pd.Series, task: Task) -> None:
    if problem := data.target_problem(values, task):
        raise UsageError(f"--target {values.name!r} cannot be the target: {problem}")
    if task == "regression" and values.dropna().nunique() < 2:
        raise UsageError(f"--target {values.name!r} cannot be the target: it holds one value only, nothing to learn")


def describe(series: pd.Series) -> Column | None:
    """The validation rule for a column as observed, or None for kinds left to inference (bool, dates)."""
    present = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        if present.empty:
            return Column(type="number")
        return Column(type="number", min=plain(present.min()), max=plain(present.max()))
    if not pd.api.types.is_string_dtype(series):
        return None
    distinct = present.unique()
    if len(distinct) > MAX_CATEGORIES:
        return Column(type="string")
    return Column(type="string", values=sorted(distinct.tolist()))


def describe_target(series: pd.Series, task: Task) -> Column:
    """The target as validate checks it: a regression target's range, else every class as the file holds it."""
    present = series.dropna()
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if task == "regression":
        return Column(type="number", min=plain(present.min()), max=plain(present.max()))
    values = sorted({plain(value) for value in present.unique()}, key=lambda value: (str(type(value)), value))
    return Column(type="number" if numeric else "string", values=values)


def words(name: str) -> set[str]:
    """The lowercase words of a name: `marital-status` -> {marital, status}, `ApplicantAge` -> {applicant, age}."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return {word for word in re.split(r"[\W_\d]+", spaced.lower()) if word}


def likely_sensitive(names: list[str]) -> list[str]:
    return [name for name in names if words(name) & SENSITIVE_WORDS]


def null_allowance(share: float) -> float:
    """The observed share rounded up to the next whole percent (7.3% -> 0.08, 7% -> 0.08, 0 -> 0.0)."""
    if share <= 0.0:
        return 0.0
    return min(1.0, round(math.floor(share * 100) / 100 + 0.01, 2))


def kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "true/false"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date/time"
    return str(series.dtype)


def infer(frame: pd.DataFrame, target: str, task: Task | None = None) -> Inferred:
    """Everything the config says about `frame`; `task` None means guessed from the target."""
    if target not in frame.columns:
        raise UsageError(f"--target {target!r}: no such column (columns: {', '.join(map(str, frame.columns))})")
    values = frame[target]
    hints = []
    why = "given with --task"
    if task is None:
        if values.dropna().empty:
            check_target(values, "binary")  # refused: it has no values
        task, reason = guess_task(values)
        why = f"guessed: {one_line(repr(target))} {reason}; --task to choose"
    check_target(values, task)
    if missing := int(values.isna().sum()):
        hints.append(
            f"target {target!r} is missing in {missing} row(s): validate refuses them, drop those rows from the file"
        )
    features = [name for name in frame.columns if name != target]
    empty = [name for name in features if frame[name].isna().all()]
    if len(empty) == len(features):
        raise UsageError(f"{target!r} is the only column with values: there is nothing to learn from")
    columns: dict[str, Column] = {}
    undeclared = {}
    for name in frame.columns:
        if name == target:
            columns[name] = describe_target(values, task)
        elif name not in empty:
            rule = describe(frame[name])
            if rule is None:
                undeclared[name] = kind(frame[name])
            else:
                columns[name] = rule
    shares = frame[[name for name in features if name not in empty]].isna().mean()
    null_shares = {name: float(share) for name, share in shares.items() if share > 0}
    for name, rule in columns.items():
        present = frame[name].dropna()
        if name != target and rule.type == "string" and len(frame) > MAX_CATEGORIES and present.is_unique:
            hints.append(f"{name!r} has a different value in every row: an identifier? leave it out with data.features")
        markers = [marker for marker in LIKELY_MISSING if rule.type == "string" and (present == marker).any()]
        if markers:
            hints.append(f"{name!r} has cells {', '.join(map(repr, markers))}: if they mean missing, pass --missing")
    sensitive = likely_sensitive([name for name in features if name not in empty])
    for name in sensitive:
        if name in columns and columns[name].type == "number" and frame[name].nunique() > MAX_CLASS_CODES:
            hints.append(f"{name!r} is a number with many values: audit it in bands (a column like age_group)")
    scale = float(values.std()) if task == "regression" else None
    return Inferred(
        rows=len(frame),
        width=frame.shape[1],
        target=target,
        task=task,
        why=why,
        columns=columns,
        undeclared=undeclared,
        features=[name for name in features if name not in empty],
        empty=empty,
        null_shares=null_shares,
        sensitive=sensitive,
        target_scale=scale,
        hints=hints,
    )


def sniff_separator(path: Path, encoding: str) -> str | None:
    """The separator the first lines of a CSV use (',' ';' tab '|'), or None when it cannot tell."""
    openers: dict[str, Callable[..., IO[str]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    suffix = path.suffix.lower()
    if suffix in data.COMPRESSIONS and suffix not in openers:
        return None  # .zip / .zst: pandas reads them, the standard library cannot stream them
    try:
        with openers.get(suffix, open)(path, "rt", encoding=encoding, errors="replace", newline="") as handle:
            sample = "".join(itertools.islice(handle, 50))
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except (csv.Error, OSError, EOFError, lzma.LZMAError):
        return None


# --- render: the YAML text -------------------------------------------------------------------------


class _OneLine(dict):
    """A mapping written in flow style on one line: `{type: number, min: 0, max: 9}`."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _OneLine, lambda dumper, value: dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=True)
)
_Dumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)
)


def dump(mapping: dict[str, Any], indent: int = 0) -> str:
    """YAML for `mapping`, names quoted where they need it (safe_dump's rules); lists on one line."""
    text = yaml.dump(
        mapping, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=math.inf
    )
    return "".join(" " * indent + line for line in text.splitlines(keepends=True))


def commented(text: str, indent: int = 0) -> str:
    """`text` commented out line by line, so that deleting each "# " gives it back."""
    return "".join(f"{' ' * indent}# {line}\n" for line in text.splitlines())


def one_line(text: str) -> str:
    """A file or column name safe inside a comment."""
    return " ".join(str(text).split())


def rule(column: Column) -> _OneLine:
    return _OneLine({key: plain(value) for key, value in column.model_dump(exclude_none=True).items()})


def gate_example(inferred: Inferred) -> dict[str, Any]:
    """Example thresholds for the guessed task, with the metric names evaluate logs."""
    groups = [name for name in inferred.sensitive if inferred.columns.get(name, Column(type="string")).type == "string"]
    feature = (groups or inferred.sensitive or [EXAMPLE_FEATURE])[0]
    if inferred.task == "binary":
        thresholds = {
            "test.roc_auc": {"min": 0.8},
            "test.accuracy": {"min": 0.75},
            f"fairness.{feature}.demographic_parity_difference": {"max": 0.1},
        }
        watched = ["test.roc_auc"]
    elif inferred.task == "multiclass":
        thresholds = {
            "test.accuracy": {"min": 0.7},
            "test.f1_macro": {"min": 0.6},
            f"fairness.{feature}.accuracy_difference": {"max": 0.1},
        }
        watched = ["test.f1_macro"]
    else:
        scale = float(f"{inferred.target_scale or 1.0:.2g}")  # always predicting the mean scores about this
        thresholds = {
            "test.r2": {"min": 0.6},
            "test.rmse": {"max": plain(scale)},
            f"fairness.{feature}.mae_difference": {"max": plain(float(f"{scale / 10:.2g}"))},
        }
        watched = ["test.rmse"]
    return {"thresholds": {name: _OneLine(bound) for name, bound in thresholds.items()}, "no_regression": watched}


def render(
    inferred: Inferred,
    data_path: str,
    csv_options: Csv | None,
    project: dict[str, Any],
    source: str,
    written_as: str,
) -> str:
    """The config file's text: inferred values through safe_dump, comments written here.

    `project` holds the sections taken over from the project's config (split, model, export,
    tracking, and gate.regression_tolerance); `source` names where they came from.
    """
    package = "{{ cookiecutter.package_name }}"
    target = inferred.columns[inferred.target]
    data_section: dict[str, Any] = {"path": data_path, "target": inferred.target}
    if csv_options is not None:
        data_section["csv"] = csv_options.model_dump()
    out = [
        f"# Written by `python -m {package} init-config` for {one_line(Path(data_path).name)}: "
        f"{inferred.rows} rows, {inferred.width} columns.\n",
        "# Read it through, set the gate, then run:\n",
        f"#   python -m {package} pipeline --config {one_line(written_as)}\n",
        "# Unknown keys and wrong types are refused with the key's name. Paths are relative to this file.\n",
        dump({"task": inferred.task}).rstrip("\n") + f"  # {inferred.why}\n",
        "\n",
        "data:\n",
        dump(data_section, 2),
    ]
    if inferred.empty:
        out += [
            f"  # Left out: no values at all in {', '.join(one_line(repr(name)) for name in inferred.empty)}.\n",
            dump({"features": inferred.features}, 2),
        ]
    else:
        out.append("  features: []                 # empty: every column except the target\n")
    out.append("  sensitive_features: []        # audited by the fairness metrics and gate (may be features too)\n")
    if inferred.sensitive:
        out += [
            "  # Likely sensitive by name: uncomment to audit the model's fairness across their groups\n",
            "  # (Fairlearn metrics per group, and gate thresholds on them).\n",
            commented(dump({"sensitive_features": inferred.sensitive}), 2),
        ]
    worst = max(inferred.null_shares.items(), key=lambda item: item[1], default=None)
    note = (
        f"largest share seen: {100 * worst[1]:.1f}% in {one_line(repr(worst[0]))}, rounded up"
        if worst
        else "no feature column has a missing value"
    )
    out += [
        dump({"max_null_fraction": inferred.max_null_fraction}, 2).rstrip("\n") + f"  # {note}\n",
        "  # Validation rules, as observed in the file: number ranges are the smallest and largest values\n",
        "  # seen (widen them where production data can go further), text values are those seen (a new one\n",
        "  # fails validation). A column without `values` or `min`/`max` is checked for its type only.\n",
    ]
    if inferred.undeclared:
        kinds = ", ".join(f"{one_line(repr(name))} ({kind})" for name, kind in inferred.undeclared.items())
        out.append(f"  # Not declared, inferred from the file when read: {kinds}.\n")
    columns = {name: rule(column) for name, column in inferred.columns.items() if name != inferred.target}
    columns[inferred.target] = rule(target)
    out += [dump({"columns": columns}, 2), "\n"]
    out += [
        f"# split, model, gate.regression_tolerance, export, tracking: {one_line(source)}.\n",
        dump({"split": project["split"]}),
        "\n",
        dump({"model": project["model"]}),
    ]
    example = gate_example(inferred)
    out += [
        "\n",
        "gate:\n",
        "  # Whether a model may be registered: the thresholds are yours to set, for what this model must\n",
        "  # reach on this data. Metric names are as logged: test.<metric>, fairness.<feature>.<metric>\n",
        f"  # (for a feature in sensitive_features). For a {inferred.task} task, e.g.:\n",
        "  # (test.rmse here is the target's standard deviation: always predicting the mean scores that)\n"
        if inferred.task == "regression"
        else "",
        commented(dump(example), 2),
        dump(
            {"thresholds": {}, "no_regression": [], "regression_tolerance": project["regression_tolerance"]},
            2,
        ),
        "\n",
        dump({"export": project["export"]}),
        "\n",
        dump({"tracking": project["tracking"]}),
    ]
    return "".join(out)


# --- the project's own settings, and writing -------------------------------------------------------


def baked_framework() -> str:
    """The framework this project was generated with: the first whose module is still here."""
    for name, modules in frameworks.MODULES.items():
        if importlib.util.find_spec(f"{frameworks.__name__}.{modules[0]}") is not None:
            return name
    raise LookupError(f"no framework module in {frameworks.__name__}")


def project_settings(path: Path, explicit: bool) -> tuple[dict[str, Any], str]:
    """split, model, export, tracking and the regression tolerance from the project's config, or defaults."""
    if path.is_file():
        try:
            existing = configuration.load(path)
        except UsageError:
            if explicit:
                raise
            log.warning("%s is not a valid config: split, model, export and tracking get their defaults", path)
        else:
            settings = existing.model_dump(mode="json", include={"split", "model", "export", "tracking"})
            # No `estimator: null` for the frameworks without that choice.
            settings["model"] = existing.model.model_dump(mode="json", exclude_none=True)
            settings["regression_tolerance"] = existing.gate.regression_tolerance
            return settings, f"copied from {path.name}"
    elif explicit:
        raise UsageError(f"--config {path}: file not found")
    slug = "{{ cookiecutter.project_slug }}"
    settings = {
        "split": configuration.Split.model_validate({}).model_dump(),
        "model": {"framework": baked_framework(), "params": {}},  # {}: the framework's own defaults
        "export": core_config.Export.model_validate({}).model_dump(),
        "tracking": {"experiment": slug, "model_name": slug},
        "regression_tolerance": core_config.Gate.model_validate({}).regression_tolerance,
    }
    return settings, f"defaults ({path.name} not found)"


def data_reference(path: Path, folder: Path) -> str:
    """The data path as the config states it: relative when the file is under the config's folder."""
    path, folder = path.resolve(), folder.resolve()
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def default_output(data_path: Path) -> Path:
    """config.<file name without extensions>.yaml in the working directory (config.yaml stays as it is)."""
    stem = data_path.name
    while Path(stem).suffix.lower() in data.COMPRESSIONS + data.CSV_SUFFIXES + data.PARQUET_SUFFIXES:
        stem = Path(stem).stem
    return Path(f"config.{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem) or 'data'}.yaml")


def write(path: Path, text: str, inferred: Inferred) -> configuration.Config:
    """Write `text` to `path` only once config.load reads it back as the config meant: a temporary
    file beside it, checked, then moved over in one step (no half-written config, ever)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            loaded = configuration.load(Path(temporary))
        except UsageError as error:
            raise RuntimeError(f"init-config wrote a config that does not load (a bug): {error}") from error
        if (loaded.data.target, set(loaded.data.columns)) != (inferred.target, set(inferred.columns)):
            raise RuntimeError("init-config wrote a config whose column names read back differently (a bug)")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return loaded


# --- the command -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="the table: CSV (maybe compressed) or Parquet")
    parser.add_argument("--target", required=True, help="the column to predict")
    parser.add_argument("--output", type=Path, help="default: ./config.<data file name>.yaml")
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], help="default: guessed")
    parser.add_argument("--separator", help="CSV separator (default: sniffed from the file, else ',')")
    parser.add_argument(
        "--missing", nargs="+", action="extend", default=[], metavar="MARKER", help="CSV cells read as missing: '?' NA"
    )
    parser.add_argument("--encoding", default="utf-8", help="CSV encoding (default: utf-8)")
    parser.add_argument(
        "--config", type=Path, help="the project config to take split, model, export and tracking from (./config.yaml)"
    )


def run(args: argparse.Namespace) -> None:
    output: Path = args.output or default_output(args.data)
    if output.exists() and not args.force:
        raise UsageError(f"{output} exists: pass --force to replace it, or --output another file")
    if not output.parent.is_dir():
        raise UsageError(f"--output {output}: folder {output.parent} does not exist")
    csv_options = None
    if data.table_format(args.data) == "csv":
        separator = {"\\t": "\t", "tab": "\t"}.get(args.separator, args.separator)
        if separator is None and args.data.is_file():
            separator = sniff_separator(args.data, args.encoding)
            log.info("separator %r (sniffed from the file; --separator to change it)", separator or ",")
        csv_options = Csv.model_validate(
            {"separator": separator or ",", "missing_values": args.missing, "encoding": args.encoding}
        )
    frame = data.read_table(args.data, csv_options or Csv.model_validate({}))
    inferred = infer(frame, args.target, args.task)
    explicit = args.config is not None
    project, source = project_settings(args.config or Path("config.yaml"), explicit)
    written_as = str(output)
    text = render(inferred, data_reference(args.data, output.parent), csv_options, project, source, written_as)
    write(output, text, inferred)

    log.info("wrote %s: %d rows, %d columns of %s", output, inferred.rows, frame.shape[1], args.data.name)
    log.info("task %s (%s)", inferred.task, inferred.why)
    for name, share in sorted(inferred.null_shares.items(), key=lambda item: -item[1]):
        if share >= MANY_NULLS:
            log.warning("%r is missing in %.1f%% of rows (imputed inside the model)", name, 100 * share)
    for name in inferred.empty:
        log.warning("%r has no values at all: left out of the features", name)
    for hint in inferred.hints:
        log.warning("%s", hint)
    if inferred.sensitive:
        log.info("likely sensitive (suggested, commented out): %s", ", ".join(inferred.sensitive))
    log.info("gate thresholds are empty: set them in %s (an example is there)", output)
    log.info("next: python -m {{ cookiecutter.package_name }} pipeline --config %s", output)


COMMANDS = {
    "init-config": ("write a config for a new table, inferred from the file", add_arguments, run),
}
