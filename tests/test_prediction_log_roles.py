"""The prediction log's owners, on a real PostgreSQL: the schema comes from `prediction-log migrate`
alone, and `prediction-log roles` makes four login roles that each may do its part and nothing else.

End to end with the project's own code: the real server (its exported model) logs /predict and
records /feedback as the server role; `score --log-to-db` logs as the scorer; `import-labels` labels
as the labeller; `monitor` reads as the monitor role. Then each role is refused, by PostgreSQL
itself, what it should not do: read inputs back, change features, write as the reader, create or
drop anything.
"""

from __future__ import annotations

import json

import pandas as pd
import psycopg

from conftest import PACKAGE, cli, run
from processes import stop
from test_request_log import feedback, logged, post, serve

ROLES = ("server", "scorer", "monitor", "labeller")


def role_urls(project, owner_url: str, folder) -> dict[str, str]:
    """`prediction-log roles --apply --urls-file`: each role's URL, as the README says to store them."""
    urls_file = folder / "prediction-log-urls.env"
    cli(project, "prediction-log", "roles", "--apply", "--url", owner_url, "--urls-file", str(urls_file))
    assert urls_file.stat().st_mode & 0o077 == 0, "the file holds passwords: owner-only"
    lines = dict(line.split("=", 1) for line in urls_file.read_text().splitlines())
    return {role: lines[f"PREDICTION_LOG_URL_{role.upper()}"] for role in ROLES}


def refused(url: str, statement: str, params: tuple = ()) -> bool:
    with psycopg.connect(url, autocommit=True) as connection:
        try:
            connection.execute(statement, params)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_a_role_meets_an_unmigrated_log_with_the_command_that_fixes_it_and_migrate_is_idempotent(
    baked, postgres, tmp_path
):
    project = baked()
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS prediction_log, prediction_log_schema")
    check = (
        f"from {PACKAGE}.serving import prediction_log as p\n"
        "try:\n    p.connect(__import__('os').environ['PREDICTION_LOG_URL']).close()\n"
        "except p.LogError as error:\n    print(error)\n"
    )
    before = run(project, "-c", check, PREDICTION_LOG_URL=postgres.url)
    assert "has no schema yet" in before.stdout and "prediction-log migrate" in before.stdout, before.stdout
    with psycopg.connect(postgres.url, autocommit=True) as connection:  # connecting created nothing
        assert connection.execute("SELECT to_regclass('prediction_log')").fetchone() == (None,)

    first = cli(project, "prediction-log", "migrate", "--url", postgres.url)
    again = cli(project, "prediction-log", "migrate", "--url", postgres.url)
    assert "applied migration(s) [1, 2]" in first.stderr and "nothing to do" in again.stderr
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        versions = connection.execute("SELECT version FROM prediction_log_schema ORDER BY version").fetchall()
    assert versions == [(1,), (2,)]
    assert run(project, "-c", check, PREDICTION_LOG_URL=postgres.url).stdout == ""

    urls = role_urls(project, postgres.url, tmp_path)
    for role, url in urls.items():  # a role cannot migrate: the message says whose URL it takes
        with psycopg.connect(postgres.url, autocommit=True) as connection:
            connection.execute("DELETE FROM prediction_log_schema")
        denied = cli(project, "prediction-log", "migrate", "--url", url, check=False)
        assert denied.returncode == 2 and "the URL of the user that owns the log" in denied.stderr, (
            role,
            denied.stderr,
        )
        cli(project, "prediction-log", "migrate", "--url", postgres.url)


def test_each_role_does_its_part_end_to_end_and_is_refused_the_rest(project_with_model, postgres, tmp_path):
    project = project_with_model
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS prediction_log, prediction_log_schema")
    cli(project, "prediction-log", "migrate", "--url", postgres.url)
    urls = role_urls(project, postgres.url, tmp_path)
    rows = pd.read_csv(project / "data" / "credit_binary.csv").head(40)
    features = rows.drop(columns=["approved"])

    # The server, as its role: /predict is logged, /feedback labels it.
    served, process = serve(project, urls["server"], tmp_path / "server.log")
    try:
        status, headers, answer = post(
            f"{served}/predict", {"records": json.loads(features.head(3).to_json(orient="records"))}
        )
        assert status == 200, answer
        request_id = headers["x-request-id"]
        assert len(logged(postgres.url, [request_id]).get(request_id, [])) == 3, (tmp_path / "server.log").read_text()
        truth = rows["approved"].head(3).tolist()
        status, _, answer = feedback(served, request_id, truth)  # with the labelling service's token
        assert (status, answer) == (200, {"request_id": request_id, "labelled": 3})
    finally:
        stop(process)

    # `score`, as the scorer: every row in the log (source batch).
    features.to_csv(tmp_path / "new.csv", index=False)
    scored = cli(
        project, "score", "--onnx", "outputs/model.onnx", "--input", str(tmp_path / "new.csv"),
        "--output", str(tmp_path / "scored.parquet"), "--log-to-db", PREDICTION_LOG_URL=urls["scorer"],
    )  # fmt: skip
    assert "40 rows in the prediction log" in scored.stderr
    batch = pd.read_parquet(tmp_path / "scored.parquet")["request_id"].iloc[0]

    # `import-labels`, as the labeller.
    pd.DataFrame({"request_id": batch, "label": rows["approved"]}).to_csv(tmp_path / "labels.csv", index=False)
    imported = cli(project, "import-labels", str(tmp_path / "labels.csv"), PREDICTION_LOG_URL=urls["labeller"])
    assert "labelled 40 rows of 1 requests" in imported.stderr
    with psycopg.connect(postgres.url) as connection:
        labels = connection.execute(
            "SELECT source, count(*), count(label) FROM prediction_log GROUP BY source ORDER BY source"
        ).fetchall()
    assert labels == [("batch", 40, 40), ("server", 3, 3)]

    # `monitor`, as the reader: it reads the window (too few rows for a verdict, but read).
    watched = cli(project, "monitor", "--last", "1h", check=False, PREDICTION_LOG_URL=urls["monitor"])
    assert watched.returncode in (0, 1), watched.stderr[-3000:]
    assert json.loads((project / "outputs" / "monitor.json").read_text())["rows"] >= 40

    # What each role is refused, by PostgreSQL itself.
    any_row = ("SELECT request_id, row_index FROM prediction_log LIMIT 1",)
    with psycopg.connect(postgres.url) as connection:
        key = connection.execute(*any_row).fetchone()
    insert = (
        "INSERT INTO prediction_log (request_id, row_index, source, model_name, run_id, inputs, prediction)"
        " VALUES ('forged', 0, 'server', 'm', 'r', '{}', '1')"
    )
    everyone = {
        "DELETE FROM prediction_log",
        "TRUNCATE prediction_log",
        "DROP TABLE prediction_log",
        "CREATE TABLE copied AS SELECT 1 AS x",
        "INSERT INTO prediction_log_schema (version, description) VALUES (99, 'forged')",
        "ALTER TABLE prediction_log ADD COLUMN extra text",
    }
    not_allowed = {
        "server": everyone
        | {
            "SELECT inputs FROM prediction_log",
            "SELECT label, prediction FROM prediction_log",
            "UPDATE prediction_log SET inputs = '{}'",
            "UPDATE prediction_log SET prediction = '0'",
        },
        "scorer": everyone
        | {
            "SELECT request_id FROM prediction_log",
            "SELECT inputs FROM prediction_log",
            "UPDATE prediction_log SET label = '0'",
        },
        "monitor": everyone
        | {insert, "UPDATE prediction_log SET label = '0'", "UPDATE prediction_log SET inputs = '{}'"},
        "labeller": everyone
        | {
            insert,
            "SELECT inputs FROM prediction_log",
            "SELECT prediction, probabilities FROM prediction_log",
            "UPDATE prediction_log SET inputs = '{}'",
            "UPDATE prediction_log SET prediction = '0', label = '0'",
            "UPDATE prediction_log SET model_version = '9'",
        },
    }
    allowed = {  # and each may still do its own part, checked the same way
        "server": [insert.replace("forged", "forged-server")],
        "scorer": [insert.replace("forged", "forged-scorer")],
        "monitor": ["SELECT inputs, prediction, label FROM prediction_log"],
        "labeller": ["UPDATE prediction_log SET label = '1' WHERE request_id = %s AND row_index = %s"],
    }
    for role, statements in not_allowed.items():
        slipped = [statement for statement in sorted(statements) if not refused(urls[role], statement)]
        assert not slipped, f"{role} was allowed: {slipped}"
        for statement in allowed[role]:
            assert not refused(urls[role], statement, key if "%s" in statement else ()), (role, statement)
    with psycopg.connect(postgres.url) as connection:
        assert connection.execute("SELECT count(*) FROM prediction_log").fetchone() == (45,)  # nothing deleted


def test_roles_prints_the_grants_it_applies_and_refuses_a_bad_prefix(baked):
    project = baked()
    printed = cli(project, "prediction-log", "roles", "--prefix", "loans").stdout
    assert "GRANT INSERT (request_id, row_index, source" in printed and "TO loans_scorer;" in printed
    assert "GRANT SELECT (request_id, row_index, label) ON prediction_log TO loans_labeller;" in printed
    assert "GRANT UPDATE (label, labelled_at, label_source) ON prediction_log TO loans_labeller;" in printed
    assert not any(line.startswith(("GRANT ALL", "GRANT DELETE", "GRANT TRUNCATE")) for line in printed.splitlines())
    bad = cli(project, "prediction-log", "roles", "--prefix", "x; DROP TABLE prediction_log", check=False)
    assert bad.returncode == 2 and "--prefix" in bad.stderr
