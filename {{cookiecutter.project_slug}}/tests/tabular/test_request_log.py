"""Request logging's parts that need no database: its settings, request ids, the sampler, the bounded
queue, how a logged request becomes rows, and what the server answers without a log. The whole
chain against a real PostgreSQL is the template's own test (tests/test_request_log.py there)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.serving import prediction_log, request_ids
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.feedback_auth import RateLimit, Tokens, fingerprint
from {{ cookiecutter.package_name }}.serving.prometheus import Metrics
from {{ cookiecutter.package_name }}.serving.request_log import Queue, RequestLog, Sampler, decode
from {{ cookiecutter.package_name }}.serving.settings import Settings
from {{ cookiecutter.package_name }}.tabular.commands.label_import import read_labels

from contract_model import build, sample_records

TASK = "{{ cookiecutter.task }}"
URL = "postgresql://logger:secret@db.internal:5432/predictions"
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"  # nothing listens on port 1: a real refusal
TOKEN = "t0ken-for-the-labelling-service-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_logging_is_off_unless_asked_and_its_settings_are_checked():
    assert Settings.from_env({}).prediction_log_sample == 0 and Settings.from_env({}).prediction_log_url == ""
    settings = Settings.from_env({"PREDICTION_LOG_URL": URL, "PREDICTION_LOG_SAMPLE": "0.1"})
    assert (settings.prediction_log_url, settings.prediction_log_sample) == (URL, 0.1)
    assert "secret" not in repr(settings)
    # A URL alone: nothing sampled, but /feedback can label what batch scoring logged.
    assert Settings.from_env({"PREDICTION_LOG_URL": URL}).prediction_log_sample == 0
    for value in ("1.5", "-0.1", "nan"):
        with pytest.raises(ValueError, match=r"PREDICTION_LOG_SAMPLE=.*from 0 \(off\) to 1"):
            Settings.from_env({"PREDICTION_LOG_URL": URL, "PREDICTION_LOG_SAMPLE": value})
    with pytest.raises(ValueError, match="PREDICTION_LOG_SAMPLE='ten percent': expected a fraction"):
        Settings.from_env({"PREDICTION_LOG_URL": URL, "PREDICTION_LOG_SAMPLE": "ten percent"})
    with pytest.raises(ValueError, match="PREDICTION_LOG_URL is not set"):
        Settings.from_env({"PREDICTION_LOG_SAMPLE": "1"})
    with pytest.raises(ValueError, match="expected a PostgreSQL URL") as refused:
        Settings.from_env({"PREDICTION_LOG_URL": "mysql://logger:secret@db/predictions"})
    assert "secret" not in str(refused.value)
    with pytest.raises(ValueError, match="PREDICTION_LOG_QUEUE_BYTES=10: must be at least"):
        Settings.from_env({"PREDICTION_LOG_QUEUE_BYTES": "10"})


def test_request_ids_are_the_servers_own():
    made = {request_ids.new() for _ in range(100)}
    assert len(made) == 100 and all(len(value) == 32 for value in made)
    assert request_ids.valid("batch-7-0") and request_ids.valid("x" * 128)
    assert not request_ids.valid("x" * 129) and not request_ids.valid("two words") and not request_ids.valid(7)


def test_feedback_tokens_must_be_secrets_and_are_matched_exactly():
    assert Settings.from_env({}).feedback_tokens == ()
    settings = Settings.from_env({"FEEDBACK_TOKEN": f"{TOKEN}, {TOKEN[::-1]}"})
    assert settings.feedback_tokens == (TOKEN, TOKEN[::-1]) and TOKEN not in repr(settings)
    for short in ("secret", "x" * 31, f"{TOKEN},short"):
        with pytest.raises(ValueError, match="FEEDBACK_TOKEN: .* at least 32 printable characters"):
            Settings.from_env({"FEEDBACK_TOKEN": short})
    tokens = Tokens((TOKEN, TOKEN[::-1]))
    assert tokens.source(f"Bearer {TOKEN}".encode()) == f"feedback:{fingerprint(TOKEN)}"
    assert tokens.source(f"bearer {TOKEN[::-1]}".encode()) == f"feedback:{fingerprint(TOKEN[::-1])}"
    for wrong in (None, b"", TOKEN.encode(), f"Basic {TOKEN}".encode(), f"Bearer {TOKEN[:-1]}".encode()):
        assert tokens.source(wrong) is None, wrong
    assert TOKEN not in fingerprint(TOKEN) and len(fingerprint(TOKEN)) == 12


def test_the_rate_limit_allows_a_burst_then_its_rate_per_key():
    now = [0.0]
    limit = RateLimit(per_minute=60, clock=lambda: now[0])  # one a second, bursts of 6
    assert [limit.wait("a") for _ in range(6)] == [0.0] * 6
    assert limit.wait("a") == pytest.approx(1.0)
    assert limit.wait("b") == 0.0  # another key has its own bucket
    now[0] += 1.0
    assert limit.wait("a") == 0.0 and limit.wait("a") > 0


def test_the_sampler_takes_its_rate_and_never_draws_at_the_ends():
    draws = itertools.cycle([0.05, 0.5, 0.95, 0.099, 0.1])
    sampled = Sampler(0.1, draw=lambda: next(draws))
    assert [sampled() for _ in range(5)] == [True, False, False, True, False]
    never_drawn = Sampler(1.0, draw=lambda: pytest.fail("rate 1 needs no draw"))
    assert all(never_drawn() for _ in range(3))
    assert not any(Sampler(0.0)() for _ in range(1000))


def test_the_queue_is_bounded_by_bytes_and_counts_what_it_refused():
    queue = Queue(max_bytes=100)
    queue.put((b"a", b"x" * 40, b"y" * 10))
    queue.put((b"b", b"x" * 40, b"y" * 10))
    queue.put((b"c", b"x", b""))  # full: 100 bytes held
    entries, refused = queue.take()
    assert [entry[0] for entry in entries] == [b"a", b"b"] and refused == 1
    assert queue.take() == ([], 0)  # room again after a take
    queue.put((b"d", b"x" * 60, b""))
    assert [entry[0] for entry in queue.take()[0]] == [b"d"]


def test_a_logged_request_becomes_rows_by_the_clients_column_names():
    answer = orjson.dumps({"predictions": [1, 0], "probabilities": [[0.25, 0.75], [0.5, 0.5]], "classes": [0, 1]})
    records = [{"hours per week": 40, "work-class": "Private"}, {"hours per week": None, "work-class": None}]
    by_rows = decode((b"id-1", orjson.dumps({"records": records}), answer))
    columns = {"hours per week": [40, None], "work-class": ["Private", None]}
    by_columns = decode((b"id-1", orjson.dumps({"columns": columns}), answer))
    assert by_rows == by_columns == ("id-1", records, [1, 0], [[0.25, 0.75], [0.5, 0.5]])
    regression = decode((b"id-2", json.dumps({"records": records[:1]}).encode(), b'{"predictions":[3.5]}'))
    assert regression == ("id-2", records[:1], [3.5], None)


def test_an_unreachable_database_drops_and_counts_without_raising():
    metrics = Metrics(set())
    model = prediction_log.Model("m", "1", "run")
    request_log = RequestLog(UNREACHABLE, 1.0, model, metrics, 1 << 20)
    body, answer = orjson.dumps({"records": [{"a": 1}]}), b'{"predictions":[2.0]}'
    for index in range(3):
        request_log.offer(f"id-{index}".encode(), body, answer)
    request_log.flush()
    assert metrics.registry.get_sample_value("prediction_log_dropped_total", {"reason": "unavailable"}) == 3
    assert metrics.registry.get_sample_value("prediction_log_written_total") == 0
    assert "connection" in request_log.reason.lower() or "connect" in request_log.reason.lower()


@pytest.fixture(scope="module")
def unlogged(tmp_path_factory):
    model = build(tmp_path_factory.mktemp("model") / "model.onnx", TASK)
    with TestClient(create_app(Settings(model_path=model))) as client:
        yield client


def test_every_predict_answer_carries_an_id_the_server_made(unlogged):
    records = sample_records(TASK, rows=2)
    # A client's own id is ignored: one client could otherwise claim the id another will send.
    given = unlogged.post("/predict", json={"records": records}, headers={"X-Request-ID": "batch-7"})
    assert given.status_code == 200 and len(given.headers["x-request-id"]) == 32
    again = unlogged.post("/predict", json={"records": records}, headers={"X-Request-ID": "batch-7"})
    assert again.headers["x-request-id"] != given.headers["x-request-id"]
    refused = unlogged.post("/predict", json={"records": []})
    assert refused.status_code == 422 and refused.headers["x-request-id"]
    operation = unlogged.get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert "parameters" not in operation
    assert all("X-Request-ID" in answer["headers"] for answer in operation["responses"].values())


def test_feedback_without_a_token_is_off_and_says_how_to_turn_it_on(unlogged):
    answer = unlogged.post("/feedback", json={"request_id": "batch-7", "labels": [1]}, headers=BEARER)
    assert answer.status_code == 403 and "FEEDBACK_TOKEN" in answer.json()["detail"]
    assert "/feedback" not in unlogged.get("/openapi.json").json()["paths"]


def test_feedback_without_a_log_is_503_and_not_documented(tmp_path_factory):
    model = build(tmp_path_factory.mktemp("model") / "model.onnx", TASK)
    with TestClient(create_app(Settings(model_path=model, feedback_tokens=(TOKEN,)))) as client:
        answer = client.post("/feedback", json={"request_id": "batch-7", "labels": [1]}, headers=BEARER)
        assert answer.status_code == 503 and "PREDICTION_LOG_URL" in answer.json()["detail"]
        assert "/feedback" not in client.get("/openapi.json").json()["paths"]


@pytest.fixture(scope="module")
def feedback_unreachable(tmp_path_factory):
    model = build(tmp_path_factory.mktemp("model") / "model.onnx", TASK)
    settings = Settings(model_path=model, prediction_log_url=UNREACHABLE, feedback_tokens=(TOKEN,))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "empty request body"),
        (b"{", 400, "malformed JSON"),
        (b"[]", 422, "got not an object"),
        (b'{"request_id": "a"}', 422, "got keys 'request_id'"),
        (b'{"request_id": "a b", "labels": [1]}', 422, "request_id: expected the X-Request-ID"),
        (b'{"request_id": "a", "labels": []}', 422, "labels: expected a non-empty array"),
        (b'{"request_id": "a", "labels": [NaN]}', 422, "labels[0]"),
        (b'{"request_id": "a", "labels": [true]}', 422, "labels[0]"),
    ],
)
def test_feedback_bodies_are_checked_before_the_database(feedback_unreachable, body, status, message):
    headers = {"Content-Type": "application/json", **BEARER}
    answer = feedback_unreachable.post("/feedback", content=body, headers=headers)
    assert answer.status_code == status and message in answer.json()["detail"], answer.text


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "no token"),
        ({"Authorization": f"Bearer {TOKEN[:-1]}x"}, "an unknown token"),
        ({"Authorization": TOKEN}, "an unknown token"),  # no scheme
    ],
)
def test_feedback_without_a_valid_token_is_401_before_the_body_is_read(feedback_unreachable, headers, message):
    answer = feedback_unreachable.post("/feedback", content=b"not even JSON", headers=headers)
    assert answer.status_code == 401 and message in answer.json()["detail"], answer.text
    assert answer.headers["www-authenticate"] == "Bearer"


def test_feedback_with_the_database_unreachable_is_503(feedback_unreachable):
    classes = feedback_unreachable.get("/metadata").json()["classes"]
    label = classes[0] if classes else 0.5  # a label the model can have
    answer = feedback_unreachable.post("/feedback", json={"request_id": "a", "labels": [label]}, headers=BEARER)
    assert answer.status_code == 503 and "cannot be reached" in answer.json()["detail"]
    assert "/feedback" in feedback_unreachable.get("/openapi.json").json()["paths"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_labels_file_is_read_by_request_in_row_order(tmp_path):
    indexed = write(tmp_path / "labels.csv", "request_id,row_index,label\nb,1,yes\na,0,no\nb,0,no\n007,0,yes\n")
    assert read_labels(indexed) == {"b": ["no", "yes"], "a": ["no"], "007": ["yes"]}
    in_order = write(tmp_path / "ordered.csv", "request_id,label\nb,3.5\na,1\nb,2\n")
    assert read_labels(in_order) == {"b": [3.5, 2.0], "a": [1.0]}


CLASSES = None if TASK == "regression" else [0, 1, 2]


def test_a_labels_file_is_checked_as_feedback_checks_labels_naming_each_row(tmp_path):
    good, stored = ("2.5", 2.5) if CLASSES is None else ("1", 1)  # CSV has no types: "1" is the class 1
    text = f'request_id,label\nr1,{good}\nr2,banana\nr3,"=HYPERLINK(""http://x"")"\nr4,1e309\n'
    with pytest.raises(UsageError, match="3 labels the model cannot have, nothing recorded") as refused:
        read_labels(write(tmp_path / "labels.csv", text), CLASSES)
    message = str(refused.value)
    for row, label in ((2, "'banana'"), (3, "'=HYPERLINK"), (4, "'1e309'")):
        assert f"row {row} (request r{row}): " in message and label in message, message
    assert "row 1 " not in message
    assert read_labels(write(tmp_path / "ok.csv", f"request_id,label\nr1,{good}\n"), CLASSES) == {"r1": [stored]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,label\na,1\n", "expected request_id,row_index,label or request_id,label"),
        ("request_id,row_index,label\na,0,1\na,2,0\n", "row_index must run 0, 1, 2"),
        ("request_id,row_index,label\na,0,1\na,0,0\n", "row_index must run 0, 1, 2"),
        ("request_id,label\na,1\nb,\n", "row 2: no label"),
    ],
)
def test_a_labels_file_that_cannot_be_right_is_refused_by_name(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        read_labels(write(tmp_path / "labels.csv", text))
