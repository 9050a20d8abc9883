"""The prediction log: one PostgreSQL table of scored rows, written by the server (a sample of its
requests) and by batch scoring, labelled later through /feedback, and read by `monitor`.

It lives in the serving package because the serving image ships only this package: the server must
be able to write it with nothing but psycopg. One row per scored row: `(request_id, row_index)` is its
key, so a request of many rows is labelled with one list, and a batch file is one request per chunk.
Values are JSON: `inputs` is keyed by the user's column names (as /predict takes them), `prediction`
is the label or value /predict answered, `probabilities` the class probabilities (classification).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # psycopg is imported when the log is used: a server without a log never loads it
    import psycopg

TABLE = "prediction_log"
SOURCES = ("server", "batch")
# Who recorded a row's label: /feedback with a token ("feedback:<the token's fingerprint>", feedback_auth.py)
# or `import-labels` ("import"). `monitor` trusts labels of these kinds only (the part before ":"); a
# label without a source (recorded before labels carried one, or written to the table by hand) is not.
LABEL_SOURCES = ("feedback", "import")
# Where the log is, for the server, `score` and `monitor` alike (a libpq URL: postgresql://user@host/db).
DATABASE_URL_ENV = "PREDICTION_LOG_URL"

# The schema, as numbered steps. `prediction-log migrate` (prediction_log_admin.py) applies the steps a
# database lacks, with the owner's credentials; nothing else ever creates or alters the table, so the
# server, `score`, `monitor` and `import-labels` can run as roles that may not (PRIVILEGES below).
# Append a step for a change; never edit a released one. Step 1 adopts a table the log's connect
# created before migrations existed (IF NOT EXISTS).
VERSIONS = f"{TABLE}_schema"  # which steps a database has: (version, description, applied_at)
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "the prediction log table",
        f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    request_id    text        NOT NULL,
    row_index     integer     NOT NULL,
    logged_at     timestamptz NOT NULL DEFAULT now(),
    source        text        NOT NULL CHECK (source IN ('server', 'batch')),
    model_name    text        NOT NULL,
    model_version text        NOT NULL DEFAULT '',
    run_id        text        NOT NULL,
    inputs        jsonb       NOT NULL,
    prediction    jsonb       NOT NULL,
    probabilities jsonb,
    label         jsonb,
    labelled_at   timestamptz,
    PRIMARY KEY (request_id, row_index)
);
CREATE INDEX IF NOT EXISTS {TABLE}_window ON {TABLE} (model_name, logged_at);
""",
    ),
    (
        2,
        "who recorded each label (feedback:<token digest> or import): monitor judges on trusted labels only",
        f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS label_source text;",
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]  # what this code reads and writes: connect() refuses an older database

COLUMNS = (
    "request_id",
    "row_index",
    "source",
    "model_name",
    "model_version",
    "run_id",
    "inputs",
    "prediction",
    "probabilities",
)
LABEL_COLUMNS = ("label", "labelled_at", "label_source")
# What `monitor` reads of each row in its window (monitoring/window.py), in this order; it filters on
# model_name and logged_at and orders by (logged_at, request_id, row_index).
MONITOR_READS = (
    "logged_at",
    "model_version",
    "run_id",
    "inputs",
    "prediction",
    "probabilities",
    "label",
    "label_source",
)
# Who may do what, per user of the log, on exactly the columns its code touches (`prediction-log
# roles` grants these and nothing else; every role may also read VERSIONS, for connect's check).
# Labelling reads request_id, row_index and label: an UPDATE's WHERE needs SELECT on the columns it
# names, and a label is final (add_labels updates only rows whose label is still empty).
PRIVILEGES: dict[str, dict[str, tuple[str, ...]]] = {
    # The server: logs what it answered; /feedback labels logged rows. It cannot read inputs or
    # predictions back, nor change a logged row's features (it reads labels only to keep them final).
    "server": {"INSERT": COLUMNS, "SELECT": ("request_id", "row_index", "label"), "UPDATE": LABEL_COLUMNS},
    # `score --log-to-db`: adds rows, reads nothing.
    "scorer": {"INSERT": COLUMNS},
    # `monitor`: reads a window (monitoring/window.py), writes nothing.
    "monitor": {"SELECT": (*MONITOR_READS, "request_id", "row_index", "model_name")},
    # `import-labels`: labels logged rows, reads nothing else.
    "labeller": {"SELECT": ("request_id", "row_index", "label"), "UPDATE": LABEL_COLUMNS},
}
MIGRATE_HINT = 'run `prediction-log migrate` with the log owner\'s URL (README, "Who may touch the prediction log")'


class LogError(RuntimeError):
    """The log cannot be reached or written; the message says which database and what to check."""


class AlreadyLabelled(Exception):
    """The request's rows have labels already: a label, once recorded, is final."""


@dataclass(frozen=True)
class Model:
    """Which model scored the rows: every logged row carries it, so a window can be split by version."""

    name: str
    version: str
    run_id: str


def connect(url: str) -> psycopg.Connection:
    """A connection to a log whose schema is at least SCHEMA_VERSION; LogError naming what to do otherwise.

    It creates nothing: each user of the log runs as a role that may only do its part (PRIVILEGES),
    and PostgreSQL refuses even `CREATE TABLE IF NOT EXISTS` to a role that may not create.
    """
    import psycopg

    if not url.startswith(("postgresql://", "postgres://")):
        raise LogError(
            f"{DATABASE_URL_ENV}={_redacted(url)!r}: expected a PostgreSQL URL, postgresql://user@host:5432/db"
        )
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise LogError(
            f"cannot connect to the prediction log at {_redacted(url)}: {str(error).strip()}; check "
            f"{DATABASE_URL_ENV} (host, port, user, password, database) and that the server accepts connections"
        ) from error
    try:
        version = schema_version(connection)
    except psycopg.errors.InsufficientPrivilege as error:
        connection.close()
        raise LogError(
            f"the prediction log at {_redacted(url)}: this user may not read {VERSIONS}: "
            "give it its role's grants with `prediction-log roles`"
        ) from error
    except BaseException:
        connection.close()
        raise
    if version < SCHEMA_VERSION:
        connection.close()
        found = f"schema version {version}" if version else "no schema yet"
        raise LogError(
            f"the prediction log at {_redacted(url)} has {found}, this code needs version {SCHEMA_VERSION}: "
            + MIGRATE_HINT
        )
    return connection


def schema_version(connection: psycopg.Connection) -> int:
    """The newest migration the database has; 0 when it has none (no VERSIONS table)."""
    # In a transaction of its own: a check left open would turn callers' transactions into savepoints.
    with connection.transaction():
        exists = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSIONS,)).fetchone()
        if not exists or not exists[0]:
            return 0
        row = connection.execute(f"SELECT max(version) FROM {VERSIONS}").fetchone()
    return int(row[0] or 0) if row else 0


def migrate(connection: psycopg.Connection) -> list[int]:
    """Apply the migrations the database lacks, all in one transaction; the versions applied.

    Run as the log's owner. Idempotent: a second run applies nothing. Two at once are serialised by
    an advisory lock, so the second sees what the first applied.
    """
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (VERSIONS,))
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSIONS} ("
            "version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {version for (version,) in connection.execute(f"SELECT version FROM {VERSIONS}")}
        done = []
        for version, description, statements in MIGRATIONS:
            if version in applied:
                continue
            connection.execute(statements)
            connection.execute(f"INSERT INTO {VERSIONS} (version, description) VALUES (%s, %s)", (version, description))
            done.append(version)
    return done


def write(
    connection: psycopg.Connection,
    model: Model,
    source: str,
    request_id: str,
    inputs: Sequence[dict[str, Any]],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float]] | None = None,
    first_row: int = 0,
) -> int:
    """Log one request's rows (COPY: a 100k-row chunk takes about a second); returns the rows written."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: expected one of {SOURCES}")
    if len(inputs) != len(predictions) or (probabilities is not None and len(probabilities) != len(inputs)):
        raise ValueError("inputs, predictions and probabilities must have one entry per row")
    rows = _rows(model, source, request_id, inputs, predictions, probabilities, first_row)
    with (
        connection.transaction(),
        connection.cursor() as cursor,
        cursor.copy(f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    return len(inputs)


def write_requests(
    connection: psycopg.Connection,
    model: Model,
    source: str,
    requests: Sequence[tuple[str, Sequence[dict[str, Any]], Sequence[Any], Sequence[Sequence[float]] | None]],
) -> int:
    """Log several requests, each (request_id, inputs, predictions, probabilities), in one COPY and one
    transaction: the server's writer batches what it sampled this way. All or nothing: a request id
    already in the table fails the whole batch (psycopg.errors.UniqueViolation)."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: expected one of {SOURCES}")
    written = 0
    with (
        connection.transaction(),
        connection.cursor() as cursor,
        cursor.copy(f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for request_id, inputs, predictions, probabilities in requests:
            for row in _rows(model, source, request_id, inputs, predictions, probabilities, 0):
                copy.write_row(row)
            written += len(inputs)
    return written


def add_labels(connection: psycopg.Connection, request_id: str, labels: Sequence[Any], source: str) -> int:
    """Record the true labels of a logged request, one per row in the order they were sent, and who
    recorded them (`source`: see LABEL_SOURCES).

    Raises LookupError when the request was not logged (not sampled, or an unknown id), ValueError
    when the number of labels differs from its rows, AlreadyLabelled when any of its rows has a label
    (a label is final: nobody may relabel a row 1 -> 0): nothing is written then.
    """
    if source.partition(":")[0] not in LABEL_SOURCES:
        raise ValueError(f"label source {source!r}: expected one of {LABEL_SOURCES}")
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(label) FROM {TABLE} WHERE request_id = %s", (request_id,))
        logged, labelled = cursor.fetchone() or (0, 0)
        if logged == 0:
            raise LookupError(f"request {request_id!r} is not in the prediction log (not sampled, or unknown id)")
        if logged != len(labels):
            raise ValueError(f"request {request_id!r} has {logged} logged rows; got {len(labels)} labels")
        if labelled:
            raise AlreadyLabelled(f"request {request_id!r} is labelled already; a label, once recorded, is final")
        # One statement, and only rows still unlabelled: of two labellers at once, the second finds
        # none left (PostgreSQL re-checks the condition after the first commits) and is refused.
        cursor.execute(
            f"UPDATE {TABLE} AS logged SET label = given.label::jsonb, labelled_at = now(), label_source = %s "
            "FROM unnest(%s::integer[], %s::text[]) AS given(row_index, label) "
            "WHERE logged.request_id = %s AND logged.row_index = given.row_index AND logged.label IS NULL",
            (source, list(range(len(labels))), [_json(label) for label in labels], request_id),
        )
        if cursor.rowcount != len(labels):
            raise AlreadyLabelled(f"request {request_id!r} was labelled meanwhile; a label, once recorded, is final")
    return len(labels)


def _rows(
    model: Model,
    source: str,
    request_id: str,
    inputs: Sequence[dict[str, Any]],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float]] | None,
    first_row: int,
) -> Iterable[tuple]:
    for index, (row, predicted) in enumerate(zip(inputs, predictions, strict=True)):
        yield (
            request_id,
            first_row + index,
            source,
            model.name,
            model.version,
            model.run_id,
            _json(row),
            _json(predicted),
            None if probabilities is None else _json(probabilities[index]),
        )


def _json(value: Any) -> str:
    # NaN is not JSON: a missing number is logged as null, as /predict accepts it.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
