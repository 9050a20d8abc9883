"""Reading the table, deciding what each column is, and splitting it the same way in every stage."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import UsageError
from ...serving import contract
from ..config import Column, Config, Csv, Task

log = logging.getLogger(__name__)
# What `train` logs of its test split: a digest and a row count, never the rows (held_out).
TEST_DIGEST_PARAM = "split.test.sha256"
TEST_ROWS_PARAM = "split.test.rows"


@dataclass(frozen=True)
class Schema:
    """What the model sees: feature columns and their kinds, the target, the groups to audit."""

    task: Task
    target: str
    columns: dict[str, Column]  # features only, in model input order
    sensitive: list[str]

    @property
    def features(self) -> list[str]:
        return list(self.columns)

    @property
    def numeric(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.type == "number"]

    @property
    def categorical(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.type == "string"]

    @property
    def inputs(self) -> dict[str, str]:
        """Column name -> the model's input name (an identifier: see contract.input_names)."""
        return dict(zip(self.features, contract.input_names(self.features), strict=True))

    @property
    def input_kinds(self) -> dict[str, str]:
        """Input name -> "number" or "string", in model input order: what the frameworks build on."""
        return {self.inputs[name]: column.type for name, column in self.columns.items()}

    @property
    def numeric_inputs(self) -> list[str]:
        return [self.inputs[name] for name in self.numeric]

    @property
    def categorical_inputs(self) -> list[str]:
        return [self.inputs[name] for name in self.categorical]

    def as_dict(self) -> dict:
        """The JSON form carried inside the ONNX file and logged with the run."""
        return {
            "task": self.task,
            "target": self.target,
            "features": [
                {
                    "name": name,
                    "input": self.inputs[name],
                    "type": column.type,
                    **({"categories": column.values} if column.values else {}),
                }
                for name, column in self.columns.items()
            ],
        }


CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz", ".zst")


def table_format(path: Path) -> str:
    """The table's format, "csv" or "parquet", from the file name (`data.csv.gz` is a compressed CSV)."""
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    if suffixes and suffixes[-1] in CSV_SUFFIXES:
        return "csv"
    if suffixes and suffixes[-1] in PARQUET_SUFFIXES:
        return "parquet"
    raise UsageError(
        f"{path}: unknown table format {''.join(path.suffixes) or '(no extension)'}; name the file "
        f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)} (a CSV may also end in {', '.join(COMPRESSIONS)})"
    )


def header(path: Path, csv: Csv) -> list[str]:
    """The column names exactly as the file has them (pandas would rename repeated and blank ones)."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    first = pd.read_csv(path, sep=csv.separator, encoding=csv.encoding, header=None, nrows=1, dtype=str)
    names = ["" if pd.isna(name) else str(name) for name in first.iloc[0]] if len(first) else []
    return [name.strip() for name in names] if csv.strip_whitespace else names


def name_problems(names: list[str]) -> list[str]:
    """What makes a set of column names unusable: blank names and repeated names."""
    problems = []
    blank = [str(index + 1) for index, name in enumerate(names) if not name.strip()]
    if blank:
        problems.append(f"column(s) number {', '.join(blank)} have no name")
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    repeated = [f"{name!r} ({count} times)" for name, count in counts.items() if count > 1 and name.strip()]
    if repeated:
        problems.append(f"repeated column name(s): {', '.join(repeated)}")
    return problems


def read_table(path: Path, csv: Csv) -> pd.DataFrame:
    """The table at `path` (CSV read with `csv`'s options, or Parquet), its column names checked."""
    kind, names = checked_header(path, csv)
    try:
        # low_memory=False: one dtype per column, not one per chunk of rows.
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, **csv_options(csv), low_memory=False)
    except READ_ERRORS as error:
        raise UsageError(f"{path}: not a readable {kind} file: {error}") from error
    frame = tidy(frame, names, csv, kind)
    if frame.empty:
        raise UsageError(f"{path}: the file has no rows")
    return frame


def read_chunks(path: Path, csv: Csv, rows: int, text: Collection[str] = ()) -> Iterator[pd.DataFrame]:
    """The table at `path` in chunks of at most `rows` rows, read as `read_table` reads it whole.

    Memory holds one chunk, whatever the file's size: a CSV is parsed `rows` lines at a time, a
    Parquet file read one record batch at a time. Columns named in `text` are read as text in every
    chunk (a chunk whose cells all look like numbers, or are all missing, would otherwise change type).
    """
    kind, names = checked_header(path, csv)
    where = 0
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path) as parquet:
                for batch in parquet.iter_batches(batch_size=rows):
                    yield tidy(batch.to_pandas(), names, csv, kind, text)
            return
        # `names` replaces the header row: the same (stripped) names `text` uses.
        reader = pd.read_csv(
            path, **csv_options(csv), header=0, names=names, dtype={name: str for name in text}, chunksize=rows
        )
        with reader:
            for frame in reader:
                yield tidy(frame, names, csv, kind, text)
                where += len(frame)
    except READ_ERRORS as error:
        raise UsageError(f"{path}: not a readable {kind} file after row {where}: {error}") from error


READ_ERRORS = (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, OSError, ValueError)


def csv_options(csv: Csv) -> dict[str, Any]:
    """pandas.read_csv's arguments for `csv`: what every reader of the table passes."""
    return {
        "sep": csv.separator,
        "encoding": csv.encoding,
        "na_values": csv.missing_values or None,
        "skipinitialspace": csv.strip_whitespace,
    }


def checked_header(path: Path, csv: Csv) -> tuple[str, list[str]]:
    """The file's format and column names, refused (UsageError) when blank or repeated."""
    if not path.is_file():
        raise UsageError(f"{path}: data file not found (set data.path in config.yaml or pass --data)")
    kind = table_format(path)
    try:
        names = header(path, csv)
    except READ_ERRORS as error:
        raise UsageError(f"{path}: not a readable {kind} file: {error}") from error
    if problems := name_problems(names):
        raise UsageError(f"{path}: {'; '.join(problems)}. Give every column a distinct, non-empty name in the file")
    return kind, names


def tidy(frame: pd.DataFrame, names: list[str], csv: Csv, kind: str, text: Collection[str] = ()) -> pd.DataFrame:
    """The file's own column names, and for a CSV with `strip_whitespace` its text cells stripped."""
    frame.columns = names
    if csv.strip_whitespace and kind == "csv":
        for name in frame.columns:
            if pd.api.types.is_string_dtype(frame[name]):
                frame[name] = stripped(frame[name], csv.missing_values, numbers=name not in text)
    return frame


def stripped(column: pd.Series, missing_values: list[str], numbers: bool = True) -> pd.Series:
    """A text column without surrounding spaces; then blank cells and markers (" ? ") are missing, and
    a column of numbers that only read as text because of them (" 40 ; ? ") becomes numeric (unless
    `numbers` is False)."""
    text = column.str.strip()
    text = text.where(~text.isin(["", *missing_values]))
    if not numbers:
        return text
    present = text.notna()
    numeric = pd.to_numeric(text, errors="coerce")
    return numeric if present.any() and numeric.notna().sum() == present.sum() else text


def fingerprint(path: Path) -> str:
    """sha256 of the file, read in blocks: a large table is not held in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def infer_column(series: pd.Series) -> Column:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return Column(type="number")
    return Column(type="string", values=sorted(series.dropna().astype(str).unique().tolist()))


def schema(config: Config, frame: pd.DataFrame, require_target: bool = True) -> Schema:
    """Resolve the configured (or inferred) columns against the table actually read.

    `require_target` False: a file to score may come without the target column."""
    target = config.data.target
    if require_target and target not in frame.columns:
        raise UsageError(
            f"data.target: column {target!r} is not in {config.data_path.name} (columns: {', '.join(frame.columns)})"
        )
    features = config.data.features or [c for c in frame.columns if c != target]
    if target in features:
        raise UsageError(f"data.features: the target {target!r} cannot also be a feature")
    declared = config.data.columns
    unknown = [name for name in features if name not in declared and name not in frame.columns]
    if unknown:
        raise UsageError(
            f"data.features: {', '.join(unknown)} not in {config.data_path.name} and not declared under data.columns"
        )
    # A declared column missing from the file is left for validation to report with the others.
    columns = {name: declared.get(name) or infer_column(frame[name]) for name in features}
    sensitive = [name for name in config.data.sensitive_features if name in frame.columns]
    for dropped in sorted(set(config.data.sensitive_features) - set(sensitive)):
        log.warning("sensitive feature %r is not in the data: no fairness metrics for it", dropped)
    return Schema(task=config.task, target=target, columns=columns, sensitive=sensitive)


def features(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Model inputs, named by input name, with the dtypes the ONNX graph takes.

    Numbers become float32 *before* training: tree splits learnt on float64 values can land between
    two float32 values and flip in the exported model. Missing numbers stay NaN for the model's own
    imputer; missing categories become contract.MISSING_CATEGORY, a category like any other.
    """
    out = {}
    for name, input_name in schema.inputs.items():
        if name in schema.numeric:
            out[input_name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float32)
        else:
            out[input_name] = frame[name].astype("str").where(frame[name].notna(), contract.MISSING_CATEGORY)
    return pd.DataFrame(out, index=frame.index)


def labels(values: pd.Series) -> pd.Series:
    """Class labels as the model learns them: text stripped, booleans as "False"/"True", whole floats as ints."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(str)
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if (whole == whole.round()).all():
            return values.astype("Int64") if values.isna().any() else values.astype(np.int64)
    if pd.api.types.is_numeric_dtype(values):
        return values
    return values.astype(str).str.strip().where(values.notna())


def target(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    values = frame[schema.target]
    return values.astype(np.float32) if schema.task == "regression" else labels(values)


def target_problem(values: pd.Series, task: Task) -> str | None:
    """Why this column cannot be the target of `task`, or None; checked before any training."""
    present = values.dropna()
    if present.empty:
        return "it has no values"
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            examples = ", ".join(repr(v) for v in present.astype(str).unique()[:3])
            return (
                f"a regression target must be numeric; it holds {examples}: "
                "pick a numeric column, or set task to binary or multiclass"
            )
        return None
    classes = sorted(labels(present).astype(str).unique().tolist())
    shown = ", ".join(repr(c) for c in classes[:10]) + (" ..." if len(classes) > 10 else "")
    if len(classes) < 2:
        return f"it has only one class ({shown}): a classifier needs at least two"
    if task == "binary" and len(classes) > 2:
        return f"task is binary but it has {len(classes)} classes ({shown}): set task: multiclass"
    if task == "multiclass" and len(classes) == 2:
        return f"task is multiclass but it has 2 classes ({shown}): set task: binary"
    return None


@dataclass(frozen=True)
class Partition:
    """Training rows and held-out test rows (config.Split says how they are drawn)."""

    train: pd.DataFrame
    test: pd.DataFrame


def split(frame: pd.DataFrame, schema: Schema, test_size: float, seed: int) -> Partition:
    """The same rows land in the test split in every stage and every run with the same seed."""
    from sklearn.model_selection import train_test_split  # only training splits: `score` reads without it

    stratify = None if schema.task == "regression" else labels(frame[schema.target])
    try:
        train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as error:
        raise UsageError(f"split.test_size: cannot split {len(frame)} rows: {error}") from error
    return Partition(train=train, test=test)


def rows_digest(frame: pd.DataFrame) -> str:
    """sha256 of a table's column names, types and values in row order (not its index): what `train`
    logs of its test split instead of the rows, and what a later stage checks its re-derived rows by."""
    digest = hashlib.sha256(json.dumps([[str(name), str(dtype)] for name, dtype in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def held_out(config: Config, params: dict[str, str], run_id: str) -> pd.DataFrame:
    """Run `run_id`'s test rows, re-derived rather than downloaded: the run logs only their digest and
    count (`split.test.sha256`, `split.test.rows`), because anyone who may read runs (every branch's
    read-only user) could download the rows themselves. The data file must be the one the run was
    trained on (its `data.sha256`); the rows are split with the run's own seed and test size and must
    match its digest, else UsageError saying what differs."""
    logged = params.get(TEST_DIGEST_PARAM, "")
    if not logged:
        raise UsageError(
            f"run {run_id} logged no {TEST_DIGEST_PARAM}: it was trained by an older version of the project; "
            "train it again"
        )
    path = config.data_path
    if not path.is_file():
        raise UsageError(
            f"run {run_id}'s test rows are re-derived from its data file, and {path} (data.path) is not here: "
            "fetch the file the run was trained on first"
        )
    if fingerprint(path) != params.get("data.sha256"):
        raise UsageError(
            f"{path} is not the file run {run_id} was trained on (sha256 {fingerprint(path)[:12]}..., the run's "
            f"{params.get('data.sha256', '?')[:12]}...): its test rows cannot be re-derived; restore that file "
            "at data.path, or train a new run on this one"
        )
    frame = read_table(path, config.data.csv)
    test = split(frame, schema(config, frame), float(params["split.test_size"]), int(params["split.seed"])).test
    if rows_digest(test) != logged or str(len(test)) != params.get(TEST_ROWS_PARAM):
        raise UsageError(
            f"run {run_id}: the test rows re-derived from {path} ({len(test)} rows) do not match the digest the "
            f"run logged ({params.get(TEST_ROWS_PARAM, '?')} rows): the split changed (config.yaml's data "
            "section, or a library's version); train a new run"
        )
    return test.reset_index(drop=True)
