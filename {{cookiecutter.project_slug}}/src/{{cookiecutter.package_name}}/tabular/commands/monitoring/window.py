"""The window `monitor` looks at: a time range of the prediction log, read into one table.

The log (serving/prediction_log.py) holds JSON per row; here it becomes one column per input (the
user's column names, as /predict takes them), plus the prediction, the class probabilities and the
label where one has arrived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from ....errors import UsageError
from ....serving import prediction_log

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION = re.compile(r"(\d+)([mhdw])")


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def describe(self) -> str:
        return f"{self.since.isoformat(timespec='minutes')} to {self.until.isoformat(timespec='minutes')}"


def duration(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` as a timedelta."""
    found = DURATION.fullmatch(text.strip())
    if not found or int(found.group(1)) == 0:
        raise UsageError(f"--last {text!r}: give a positive number and a unit, e.g. 30m, 12h, 7d or 2w")
    return timedelta(**{UNITS[found.group(2)]: int(found.group(1))})


def instant(text: str, option: str) -> datetime:
    """An ISO date or date-time; without a time zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise UsageError(f"{option} {text!r}: give an ISO date or time, e.g. 2026-11-01 or 2026-11-01T08:00") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse(last: str | None, since: str | None, until: str | None, now: datetime | None = None) -> Window:
    """--last, or --since (and optionally --until); neither: the last 7 days."""
    now = now or datetime.now(UTC)
    if last and since:
        raise UsageError("give either --last or --since/--until, not both")
    end = instant(until, "--until") if until else now
    start = instant(since, "--since") if since else end - duration(last or "7d")
    if start >= end:
        raise UsageError(f"the window is empty: {start.isoformat()} is not before {end.isoformat()}")
    return Window(start, end)


INPUT = "input:"  # prefix of the input columns, so an input named `label` or `run_id` cannot collide


QUERY = f"""
SELECT {", ".join(prediction_log.MONITOR_READS)}
FROM {prediction_log.TABLE}
WHERE model_name = %s AND logged_at >= %s AND logged_at < %s
ORDER BY logged_at, request_id, row_index
"""


def read(database_url: str, model_name: str, window: Window) -> pd.DataFrame:
    """Every logged row of `model_name` in the window: `inputs` spread into one column per input."""
    import psycopg

    try:
        with prediction_log.connect(database_url) as connection, connection.cursor() as cursor:
            cursor.execute(QUERY, (model_name, window.since, window.until))
            rows = cursor.fetchall()
    except prediction_log.LogError as error:
        raise UsageError(str(error)) from error
    except psycopg.errors.InsufficientPrivilege as error:
        raise UsageError(
            f"the prediction log's user may not read {prediction_log.TABLE}: {str(error).strip()}; "
            "use the monitor role's URL (`prediction-log roles`)"
        ) from error
    logged = pd.DataFrame(rows, columns=list(prediction_log.MONITOR_READS))
    inputs = pd.DataFrame.from_records(list(logged.pop("inputs")), index=logged.index)
    return pd.concat([logged, inputs.add_prefix(INPUT)], axis=1)


def trusted(labelled: pd.DataFrame) -> pd.Series:
    """Which labelled rows carry a label from an authenticated source (prediction_log.LABEL_SOURCES):
    /feedback with a token, or `import-labels`. Labels without a source are not trusted."""
    kinds = labelled["label_source"].fillna("").astype(str).str.partition(":")[0]
    return kinds.isin(prediction_log.LABEL_SOURCES)


def inputs(rows: pd.DataFrame) -> pd.DataFrame:
    """The input columns, under the user's own column names."""
    columns = [name for name in rows.columns if name.startswith(INPUT)]
    return rows[columns].rename(columns=lambda name: name.removeprefix(INPUT))


def latest_run(rows: pd.DataFrame) -> tuple[str, str, dict[str, int]]:
    """The run (and version) that logged last: the model in service now; and the rows of every run."""
    counts = {str(run): int(count) for run, count in rows["run_id"].value_counts().items()}
    last = rows.iloc[-1]
    return str(last["run_id"]), str(last["model_version"]), counts
