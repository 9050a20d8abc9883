"""The server's request log, all real: the exported model of a pipeline run served by
`python -m <package>.serving` with PREDICTION_LOG_SAMPLE=1 against a PostgreSQL on loopback.

Requests drawn from the run's held-out rows end up as rows of the prediction log (inputs by the
table's own column names, the predictions the client got, the model's version and run id, under the
id the server made); /feedback, with the labelling service's token, labels them; a stranger can
neither claim another caller's id, label without the token, relabel, nor flood; the OpenAPI document,
/feedback included, holds under schemathesis; what is queued at shutdown is written; with PostgreSQL
stopped the server keeps answering and counts what it drops.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml

from conftest import PACKAGE, SLUG, cli, held_out_rows, project_env
from processes import free_port, start, stop, wait_for_http

VERSION = "3"  # what the image would pass as MODEL_VERSION
TOKEN = "labelling-service-token-0123456789abcdef"  # the server's FEEDBACK_TOKEN
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def serve(project: Path, database_url: str, log: Path, version: str = VERSION, **settings: str):
    """The project's server on its exported model, logging every request to `database_url`."""
    port = free_port()
    env = project_env(
        project,
        PREDICTION_LOG_URL=database_url,
        PREDICTION_LOG_SAMPLE="1",
        MODEL_VERSION=version,
        FEEDBACK_TOKEN=TOKEN,
        **settings,
    )
    command = [sys.executable, "-m", f"{PACKAGE}.serving", "--model", str(project / "outputs" / "model.onnx")]
    process = start([*command, "--port", str(port)], log, env=env, cwd=project)
    wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=60, process=process, log=log)
    return f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def served(project_with_model, postgres, tmp_path_factory):
    cli(project_with_model, "prediction-log", "migrate", "--url", postgres.url)  # the owner's job, once
    url, process = serve(project_with_model, postgres.url, tmp_path_factory.mktemp("served") / "server.log")
    yield url
    stop(process)


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def held_out(project: Path) -> tuple[list[dict], list]:
    """The run's test split (as the stages after `train` re-derive it): rows by the table's column names,
    and their labels."""
    run_id = json.loads((project / "outputs" / "run.json").read_text())["run_id"]
    frame = pd.read_parquet(held_out_rows(project, run_id, Path(tempfile.mkdtemp())))
    target = yaml.safe_load((project / "config.yaml").read_text())["data"]["target"]
    labels = frame.pop(target).tolist()
    return json.loads(frame.to_json(orient="records")), labels


def feedback(url: str, request_id: str, labels: list, headers: dict | None = None) -> tuple[int, dict, dict]:
    """POST /feedback as the labelling service (with the token), or with `headers` instead."""
    return post(f"{url}/feedback", {"request_id": request_id, "labels": labels}, BEARER if headers is None else headers)


def logged(database_url: str, request_ids: list[str], timeout: float = 15.0) -> dict[str, list[tuple]]:
    """The log's rows for these requests, once all of them are there (the writer runs every 0.2 s)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as connection:
        while True:
            try:
                rows = connection.execute(
                    "SELECT request_id, row_index, source, model_name, model_version, run_id, inputs, prediction,"
                    " probabilities, label FROM prediction_log WHERE request_id = ANY(%s)"
                    " ORDER BY request_id, row_index",
                    (request_ids,),
                ).fetchall()
            except psycopg.errors.UndefinedTable:  # the writer creates it when it first connects
                rows = []
            found: dict[str, list[tuple]] = {}
            for row in rows:
                found.setdefault(row[0], []).append(row)
            if set(found) == set(request_ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        found = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", response.read().decode(), re.M)
    return float(found.group(1)) if found else 0.0


def test_sampled_requests_are_logged_as_answered_and_labelled_by_feedback(served, postgres, project_with_model):
    rows, labels = held_out(project_with_model)
    requests = []  # (request id, rows, labels, answer)
    for start_row, size in ((0, 1), (1, 1), (2, 3), (5, 1), (6, 5), (11, 1)):
        part, truth = rows[start_row : start_row + size], labels[start_row : start_row + size]
        columns = {name: [row[name] for row in part] for name in part[0]}
        body = {"columns": columns} if size == 3 else {"records": part}  # columns are logged by rows too
        status, answer_headers, answer = post(f"{served}/predict", body)
        assert status == 200, answer
        requests.append((answer_headers["x-request-id"], part, truth, answer))
    assert len({request_id for request_id, *_ in requests}) == len(requests)

    found = logged(postgres.url, [request_id for request_id, *_ in requests])
    run_id = json.loads((project_with_model / "outputs" / "run.json").read_text())["run_id"]
    for request_id, part, _, answer in requests:
        assert request_id in found, f"{request_id} not logged"
        assert [row[1] for row in found[request_id]] == list(range(len(part)))
        for (_, index, source, name, version, run, inputs, prediction, probabilities, label), sent in zip(
            found[request_id], part, strict=True
        ):
            assert (source, name, version, run, label) == ("server", SLUG, VERSION, run_id, None)
            assert inputs == sent  # by the table's own column names, values as sent
            assert prediction == answer["predictions"][index]
            assert probabilities == answer["probabilities"][index]

    several = requests[2]  # three rows: one label is not enough
    status, _, answer = feedback(served, several[0], several[2][:1])
    assert status == 422 and "has 3 logged rows; got 1 labels" in answer["detail"]
    status, _, answer = feedback(served, several[0], ["not a class"] * 3)
    assert status == 422 and "labels[0]" in answer["detail"]
    for request_id, part, truth, _ in requests:
        status, _, answer = feedback(served, request_id, truth)
        assert (status, answer) == (200, {"request_id": request_id, "labelled": len(part)})
    labelled = logged(postgres.url, [request_id for request_id, *_ in requests])
    for request_id, _, truth, _ in requests:
        assert [row[-1] for row in labelled[request_id]] == truth
    status, _, answer = feedback(served, "never-sent", [labels[0]])
    assert status == 404 and "not in the prediction log" in answer["detail"]


def label_of(database_url: str, request_id: str) -> tuple:
    with psycopg.connect(database_url, autocommit=True) as connection:
        return connection.execute(
            "SELECT label, label_source FROM prediction_log WHERE request_id = %s AND row_index = 0", (request_id,)
        ).fetchone()


def test_a_stranger_cannot_claim_an_id_label_or_relabel(served, postgres, project_with_model):
    """The reported attack: a stranger sends first with the id the owner will use (the owner's rows used
    to be dropped as duplicates and its labels refused), then labels and relabels rows 1 -> 0."""
    rows, labels = held_out(project_with_model)
    claimed = "order-4711"
    status, stranger_headers, _ = post(f"{served}/predict", {"records": rows[30:31]}, {"X-Request-ID": claimed})
    assert status == 200 and stranger_headers["x-request-id"] != claimed
    status, owner_headers, _ = post(f"{served}/predict", {"records": rows[31:32]}, {"X-Request-ID": claimed})
    owner = owner_headers["x-request-id"]
    assert status == 200 and owner not in (claimed, stranger_headers["x-request-id"])
    found = logged(postgres.url, [owner, stranger_headers["x-request-id"]])
    assert found[owner][0][6] == rows[31], "the owner's row must be logged under its own id"
    assert claimed not in logged(postgres.url, [claimed], timeout=0)

    truth = labels[31]
    other = next(label for label in (0, 1, "x") if label != truth)  # another class, for the relabel attempt
    for headers in ({}, {"Authorization": "Bearer guess-0123456789-0123456789-0123456789"}):
        status, answer_headers, answer = feedback(served, owner, [other], headers)
        assert status == 401 and answer_headers["www-authenticate"] == "Bearer", answer
    assert label_of(postgres.url, owner) == (None, None)

    status, _, _ = feedback(served, owner, [truth])  # the labelling service
    assert status == 200
    status, _, answer = feedback(served, owner, [other])  # relabelling, even with the token
    assert status == 409 and "final" in answer["detail"], answer
    assert label_of(postgres.url, owner)[0] == truth
    assert label_of(postgres.url, owner)[1].startswith("feedback:") and TOKEN not in label_of(postgres.url, owner)[1]


def test_one_client_cannot_label_a_thousand_rows_in_seconds(project_with_model, postgres, tmp_path):
    """Even with the token: past FEEDBACK_RATE_PER_MINUTE (here 60: bursts of 6) the server answers 429."""
    url, process = serve(project_with_model, postgres.url, tmp_path / "server.log", FEEDBACK_RATE_PER_MINUTE="60")
    rows, labels = held_out(project_with_model)
    try:
        sent = []
        for index in range(40, 60):
            status, headers, _ = post(f"{url}/predict", {"records": rows[index : index + 1]})
            sent.append((headers["x-request-id"], labels[index]))
        logged(postgres.url, [request_id for request_id, _ in sent])
        statuses, retry = [], None
        for request_id, label in sent:
            status, headers, _ = feedback(url, request_id, [label])
            statuses.append(status)
            retry = retry or headers.get("retry-after")
        anonymous = [feedback(url, request_id, [label], {})[0] for request_id, label in sent]
    finally:
        stop(process)
    assert statuses[:6] == [200] * 6 and statuses.count(429) >= 12, statuses
    assert retry is not None and int(retry) >= 1
    assert anonymous[:6] == [401] * 6 and 429 in anonymous, anonymous  # guessing is limited too


def test_the_documented_api_holds_with_the_log_on(served):
    """/feedback is documented once a log is configured: fuzz both operations, headers included;
    predictions go through dynamic batching (on by default), as in production."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    assert {"/predict", "/feedback"} <= set(schema.raw_schema["paths"])
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance, response_headers_conformance]

    @given(case=schema.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(checks=checks)

    fuzz()
    assert metric(served, "predict_batch_requests_count") > 0, "no /predict request went through the batcher"


def test_what_is_queued_at_shutdown_is_written(project_with_model, postgres, tmp_path):
    url, process = serve(project_with_model, postgres.url, tmp_path / "server.log")
    rows, _ = held_out(project_with_model)
    sent = []
    try:
        for index in range(20):
            status, headers, _ = post(f"{url}/predict", {"records": rows[index : index + 1]})
            assert status == 200
            sent.append(headers["x-request-id"])
    finally:
        stop(process)  # SIGTERM right after the last answer: the writer's flush, not its round, writes them
    server_log = (tmp_path / "server.log").read_text()
    assert "Application shutdown complete" in server_log and "dropped" not in server_log, server_log
    assert set(logged(postgres.url, sent, timeout=0)) == set(sent)


def test_import_labels_records_a_file_of_labels_and_names_what_it_skipped(
    served, postgres, project_with_model, tmp_path
):
    rows, labels = held_out(project_with_model)
    sent = []
    for start_row, size in ((20, 2), (22, 1)):
        status, headers, _ = post(f"{served}/predict", {"records": rows[start_row : start_row + size]})
        assert status == 200
        sent.append((headers["x-request-id"], labels[start_row : start_row + size]))
    logged(postgres.url, [request_id for request_id, _ in sent])
    lines = [(request_id, index, label) for request_id, truth in sent for index, label in enumerate(truth)]
    lines.append(("never-sent", 0, labels[0]))
    hostile = tmp_path / "hostile.csv"  # three labels the model cannot have: nothing of the file is recorded
    bad = [
        (request_id, index, wrong)
        for (request_id, index, _), wrong in zip(lines, ["banana", '=HYPERLINK("http://x")', "1e309"], strict=False)
    ]
    pd.DataFrame(bad + lines[3:], columns=["request_id", "row_index", "label"]).to_csv(hostile, index=False)
    result = cli(project_with_model, "import-labels", str(hostile), "--url", postgres.url, check=False)
    assert result.returncode == 2 and "3 labels the model cannot have" in result.stderr, result.stderr
    assert "'banana'" in result.stderr and "'=HYPERLINK" in result.stderr and "'1e309'" in result.stderr
    assert label_of(postgres.url, sent[0][0]) == (None, None)

    table = tmp_path / "labels.csv"
    pd.DataFrame(lines[::-1], columns=["request_id", "row_index", "label"]).to_csv(table, index=False)  # any order
    result = cli(project_with_model, "import-labels", str(table), "--url", postgres.url, check=False)
    assert result.returncode == 1 and "1 requests not in the log" in result.stderr and "never-sent" in result.stderr
    found = logged(postgres.url, [request_id for request_id, _ in sent])
    for request_id, truth in sent:
        assert [row[-1] for row in found[request_id]] == truth
    assert label_of(postgres.url, sent[0][0])[1] == "import"
    result = cli(project_with_model, "import-labels", str(table), "--url", postgres.url, check=False)
    assert result.returncode == 1 and "2 requests labelled already (a label is final)" in result.stderr


def test_with_the_database_down_the_server_answers_and_counts_its_drops(served, postgres, project_with_model):
    """Last in this module: it stops the module's PostgreSQL."""
    rows, labels = held_out(project_with_model)
    postgres.stop()
    before = metric(served, 'prediction_log_dropped_total{reason="unavailable"}')
    for index in range(10):
        status, headers, answer = post(f"{served}/predict", {"records": rows[index : index + 1]})
        assert status == 200 and len(answer["predictions"]) == 1 and headers["x-request-id"]
    deadline = time.monotonic() + 15
    while metric(served, 'prediction_log_dropped_total{reason="unavailable"}') < before + 10:
        assert time.monotonic() < deadline, "drops not counted within 15 s"
        time.sleep(0.2)
    status, _, answer = feedback(served, "some-request", labels[5:6])
    assert status == 503 and "cannot be reached" in answer["detail"]
