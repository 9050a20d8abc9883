"""The inference server against a real ONNX model: predictions, strict input, readiness, metadata,
metrics, the generated OpenAPI schema (fuzzed with schemathesis) and the real uvicorn process."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.model import ModelError
from {{ cookiecutter.package_name }}.serving.settings import Settings

from contract_model import build, direct, sample_records

TASK = "{{ cookiecutter.task }}"
CLASSIFICATION = TASK != "regression"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return build(tmp_path_factory.mktemp("model") / "model.onnx", TASK)


@pytest.fixture(scope="module")
def client(model_path):
    with TestClient(create_app(Settings(model_path=model_path, max_batch_rows=50))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def records():
    return sample_records(TASK, rows=8)


def check_matches(body: dict, expected: dict) -> None:
    if CLASSIFICATION:
        assert body["predictions"] == expected["label"].tolist()
        np.testing.assert_allclose(body["probabilities"], expected["probabilities"], rtol=1e-6)
        assert body["classes"] == sorted(set(body["classes"]))
    else:
        np.testing.assert_allclose(body["predictions"], expected["prediction"].reshape(-1), rtol=1e-6)


def test_predictions_equal_onnxruntime_for_records_and_columns(client, model_path, records):
    expected = direct(model_path, records)
    by_rows = client.post("/predict", json={"records": records})
    assert by_rows.status_code == 200, by_rows.text
    check_matches(by_rows.json(), expected)
    columns = {name: [row[name] for row in records] for name in records[0]}
    by_columns = client.post("/predict", json={"columns": columns})
    assert by_columns.json() == by_rows.json()


def test_integers_are_numbers_and_unseen_categories_are_accepted(client, model_path, records):
    row = dict(records[0], age=int(records[0]["age"]), purpose="a purpose never seen in training")
    response = client.post("/predict", json={"records": [row]})
    assert response.status_code == 200, response.text
    check_matches(response.json(), direct(model_path, [row]))


def test_null_is_a_missing_value_imputed_as_in_training(client, model_path, records):
    rows = [dict(records[0], age=None), dict(records[1], sex=None), dict(records[2], age=None, purpose=None)]
    response = client.post("/predict", json={"records": rows})
    assert response.status_code == 200, response.text
    expected = direct(model_path, rows)  # NaN for numbers, contract.MISSING_CATEGORY for categories
    check_matches(response.json(), expected)
    assert np.isfinite(response.json()["probabilities" if CLASSIFICATION else "predictions"]).all()
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    assert client.post("/predict", json={"columns": columns}).json() == response.json()


def bad(records, change):
    rows = [dict(row) for row in records[:3]]
    change(rows)
    return {"records": rows}


def columns(records, rows=1, drop=None, **changes):
    """The column form of the first `rows` records, with columns dropped or replaced."""
    body = {name: [row[name] for row in records[:rows]] for name in records[0] if name != drop}
    body.update(changes)
    return {"columns": body}


def _set(index, name, value):
    def change(rows):
        rows[index][name] = value

    return change


BAD_BODIES = {
    "missing column": (lambda r: bad(r, lambda rows: rows[1].pop("income")), 422, ["records[1]", "income", "missing"]),
    "unknown column": (lambda r: bad(r, _set(2, "colour", "red")), 422, ["records[2]", "colour", "unknown"]),
    "string for a number": (lambda r: bad(r, _set(1, "age", "42")), 422, ["records[1].age", "number", "'42'"]),
    "number for a category": (lambda r: bad(r, _set(0, "sex", 1)), 422, ["records[0].sex", "string", "number 1"]),
    "bool for a number": (lambda r: bad(r, _set(2, "income", True)), 422, ["records[2].income", "boolean true"]),
    "bool for a category": (lambda r: bad(r, _set(0, "purpose", False)), 422, ["records[0].purpose", "boolean"]),
    "list for a number": (lambda r: bad(r, _set(1, "loan_amount", [1])), 422, ["records[1].loan_amount", "array"]),
    "above float32": (lambda r: bad(r, _set(0, "income", 1e39)), 422, ["records[0].income", "float32"]),
    "row not an object": (lambda r: {"records": [r[0], [1, 2]]}, 422, ["records[1]", "object"]),
    "records not a list": (lambda r: {"records": r[0]}, 422, ["records", "array"]),
    "empty batch": (lambda r: {"records": []}, 422, ["records", "empty"]),
    "over the limit": (lambda r: {"records": r[:1] * 51}, 413, ["51 rows", "limit of 50"]),
    "both shapes": (lambda r: dict(records=r, columns=dict()), 422, ["exactly one", "records", "columns"]),
    "neither shape": (lambda r: {"rows": r}, 422, ["'rows'"]),
    "body is a list": (lambda r: r, 422, ["JSON object", "array"]),
    "column missing": (lambda r: columns(r, drop="age"), 422, ["columns", "'age'", "missing"]),
    "column unknown": (lambda r: columns(r, x=[1]), 422, ["columns", "'x'", "unknown"]),
    "uneven columns": (lambda r: columns(r, age=[1.0, 2.0]), 422, ["same number", "age has 2"]),
    "column wrong type": (lambda r: columns(r, rows=2, sex=["male", 3]), 422, ["columns.sex[1]", "number 3"]),
    "column not a list": (lambda r: columns(r, age=30), 422, ["columns.age", "array"]),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_bad_input_is_a_4xx_naming_the_field(client, records, case):
    make, status, fragments = BAD_BODIES[case]
    response = client.post("/predict", json=make(records))
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(fragment in detail for fragment in fragments), detail


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_written_by_python_json_are_refused_by_name(client, records, token):
    # Python's json.dumps writes these tokens (not JSON, but clients send them).
    row = dict(records[0], income=float(token.replace("Infinity", "inf")))
    body = json.dumps({"records": [records[1], row]})
    assert token in body
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "records[1].income" in response.json()["detail"] and "finite" in response.json()["detail"]


@pytest.mark.parametrize("body", [b"", b"{", b'{"records": [', b"\xff\xfe", b"[" * 5000, b"nul"])
def test_malformed_bodies_are_400(client, body):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_a_body_over_the_byte_limit_is_413_without_reading_it_all(model_path, records):
    with TestClient(create_app(Settings(model_path=model_path, max_body_bytes=2048))) as small:
        response = small.post("/predict", json={"records": records * 20})
        assert response.status_code == 413 and "MAX_BODY_BYTES" in response.json()["detail"]
        # No Content-Length (a chunked body): counted while read, refused once past the limit.
        chunked = small.post("/predict", content=iter([b" " * 1024] * 4), headers={"content-type": JSON_TYPE})
        assert chunked.status_code == 413 and "MAX_BODY_BYTES" in chunked.json()["detail"]
        assert small.post("/predict", json={"records": records[:1]}).status_code == 200


def test_a_model_that_refuses_unseen_categories_gets_them_refused_by_the_server(tmp_path, records):
    path = build(tmp_path / "strict.onnx", TASK, unseen_categories="error")
    with TestClient(create_app(Settings(model_path=path))) as strict:
        assert "purpose" in strict.get("/metadata").json()["strict_categories"]
        # The document comes from the plan that checks requests, built after the probe found this out.
        purpose = strict.get("/openapi.json").json()["components"]["schemas"]["Record"]["properties"]["purpose"]
        assert "unseen values are refused" in purpose["description"], purpose
        response = strict.post("/predict", json={"records": [dict(records[0], purpose="spaceship")]})
        assert response.status_code == 422
        assert "records[0].purpose" in response.json()["detail"] and "spaceship" in response.json()["detail"]
        assert strict.post("/predict", json={"records": records}).status_code == 200


def test_ready_only_after_warm_up(model_path):
    app = create_app(Settings(model_path=model_path))
    cold = TestClient(app)  # no `with`: the start-up (load check + warm-up) has not run
    assert cold.get("/health").status_code == 200
    assert cold.get("/ready").status_code == 503
    assert cold.post("/predict", json={"records": []}).status_code == 503
    with TestClient(app) as warm:
        assert warm.get("/ready").status_code == 200


def test_missing_or_foreign_model_stops_the_server(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        create_app(Settings(model_path=tmp_path / "absent.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        create_app(Settings(model_path=tmp_path / "junk.onnx"))


def test_metadata_describes_the_model(client, records):
    meta = client.get("/metadata").json()
    assert (meta["model_name"], meta["model_version"], meta["run_id"], meta["git_sha"]) == (
        "{{ cookiecutter.project_slug }}",
        "7",
        "0123456789abcdef",
        "abc1234",
    )
    assert meta["task"] == TASK
    assert [f["name"] for f in meta["input_schema"]] == list(records[0])
    assert (meta["classes"] is not None) == CLASSIFICATION
    assert "CPUExecutionProvider" in meta["providers"]


def test_the_version_given_at_build_time_is_the_one_reported(model_path):
    """The image passes the registered version as MODEL_VERSION: the file cannot carry it."""
    settings = Settings.from_env({"MODEL_PATH": str(model_path), "MODEL_VERSION": "12"})
    with TestClient(create_app(settings)) as versioned:
        assert versioned.get("/metadata").json()["model_version"] == "12"


def test_metrics_count_requests_by_route_and_status(client, records):
    client.post("/predict", json={"records": records[:2]})
    client.post("/predict", json={"records": []})
    client.get("/no-such-page")
    text = client.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'http_requests_total{method="POST",route="/predict",status="422"}' in text
    assert 'route="other",status="404"' in text
    assert 'http_request_duration_seconds_bucket{le="0.001",route="/predict"}' in text
    assert 'predict_errors_total{reason="invalid_input"}' in text
    assert "predict_rows_total" in text


def test_openapi_is_generated_from_the_model_schema(client, records):
    document = client.get("/openapi.json").json()
    record = document["components"]["schemas"]["Record"]
    assert set(record["properties"]) == set(records[0])
    assert record["additionalProperties"] is False
    age, sex = record["properties"]["age"]["anyOf"], record["properties"]["sex"]["anyOf"]
    assert [kind["type"] for kind in age] == ["number", "null"]  # null: a missing value
    assert sex[0]["enum"] == ["female", "male"] and sex[1] == {"type": "null"}
    assert "an unseen value is accepted" in record["properties"]["purpose"]["description"]
    rows = document["components"]["schemas"]["RecordsRequest"]["properties"]["records"]
    assert (rows["minItems"], rows["maxItems"]) == (1, 50)  # the client's MAX_BATCH_ROWS
    operation = document["paths"]["/predict"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("PredictRequest")


@pytest.mark.system
def test_schemathesis_finds_no_server_error(client):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)  # the warmed-up app
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]

    # Every documented operation; a strategy (not @schema.parametrize) so it runs inside this test.
    @given(case=schema.as_strategy())
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(checks=checks)

    fuzz()


# --- The real uvicorn process, with small limits so that the timeout tests take about a second ---

LIMITS = {"HEADER_TIMEOUT": "1", "BODY_TIMEOUT": "1", "KEEP_ALIVE_TIMEOUT": "1", "MAX_CONNECTIONS": "8"}
JSON_TYPE = "application/json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served(NamedTuple):
    port: int
    settings: Settings  # what the server runs with
    pid: int


@contextmanager
def serving(model_path, log_path, **settings: str):
    """`python -m <package>.serving` on a free loopback port, with `settings` in its environment."""
    port = free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the child
    env = {**os.environ, **settings, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}.serving", "--model", str(model_path), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "server not ready in 30 s"
                time.sleep(0.1)
        yield Served(port, Settings.from_env(env), server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a connection a test left open can hold a graceful shutdown
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def served(model_path, tmp_path_factory):
    """The server with LIMITS."""
    with serving(model_path, tmp_path_factory.mktemp("server") / "server.log", **LIMITS) as server:
        yield server


def request_head(method: str, path: str, content_type: str | None = None, length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, method: str = "POST") -> tuple[int, dict, bytes]:
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes the connection within `within` seconds (anything it sends first is skipped)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def call(
    served: Served,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = JSON_TYPE,
    timeout: float = 10,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type} if content_type else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.system
def test_python_dash_m_serving_starts_uvicorn(served, model_path, records):
    status, body = call(served, "POST", "/predict", json.dumps({"records": records}).encode())
    assert status == 200, body
    check_matches(json.loads(body), direct(model_path, records))


@pytest.mark.system
def test_a_declared_length_over_the_limit_gets_413_before_the_body_is_sent(served):
    limit = served.settings.max_body_bytes
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(request_head("POST", "/predict", JSON_TYPE, limit + 1))  # and no body at all
        status, headers, body = read_response(sock)
        assert status == 413, body
        assert "MAX_BODY_BYTES" in json.loads(body)["detail"]
        assert headers["connection"] == "close" and closed_by_server(sock, within=2)


def send_body(served: Served, body: bytes, outcome: dict, name: str) -> None:
    """POST `body` on a raw socket; outcome[name] = (status, response body), or "reset" when the server
    refused and closed before the body was all sent (the point of refusing from Content-Length)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        try:
            sock.sendall(request_head("POST", "/predict", JSON_TYPE, len(body)) + body)
            status, _, payload = read_response(sock)
            outcome[name] = status, payload
        except ConnectionError:
            outcome[name] = "reset"


@pytest.mark.system
def test_health_answers_within_a_second_while_the_largest_bodies_arrive(served, model_path):
    limit, max_rows = served.settings.max_body_bytes, served.settings.max_batch_rows
    # 20 MB of empty arrays: cheap to send, and before the body limit took it from Content-Length,
    # decoding it on the event loop held /health for over 2 s (the liveness probe waits 1 s).
    unit = b"[],"
    hostile = b'{"records":[' + unit * (20_000_000 // len(unit)) + b"[]]}"
    # The largest body that is accepted: a full batch of real rows, padded with JSON whitespace.
    sample = sample_records(TASK, rows=max_rows)
    rows = (sample * (max_rows // len(sample) + 1))[:max_rows]
    largest = json.dumps({"records": rows}).encode()
    assert len(largest) <= limit, "a full batch of the bundled rows must fit in the default body limit"
    largest += b" " * (limit - len(largest))
    outcome: dict = {}
    senders = [
        threading.Thread(target=send_body, args=(served, body, outcome, name))
        for name, body in (("hostile", hostile), ("largest", largest))
    ]
    slowest = 0.0
    for sender in senders:
        sender.start()
    while any(sender.is_alive() for sender in senders):
        started = time.perf_counter()
        assert call(served, "GET", "/health", content_type=None, timeout=10)[0] == 200
        slowest = max(slowest, time.perf_counter() - started)
    assert outcome["hostile"] == "reset" or outcome["hostile"][0] == 413, outcome["hostile"]
    status, payload = outcome["largest"]
    assert status == 200, payload[:500]
    assert len(json.loads(payload)["predictions"]) == len(rows)
    assert slowest < 1.0, f"/health took {slowest:.2f} s while large bodies were being handled"


@pytest.mark.system
def test_a_client_that_trickles_its_body_gets_408_and_is_disconnected(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(request_head("POST", "/predict", JSON_TYPE, 1000) + b'{"records": [')
        started = time.monotonic()
        trickle = threading.Thread(target=trickle_bytes, args=(sock,), daemon=True)
        trickle.start()
        status, headers, body = read_response(sock)
        elapsed = time.monotonic() - started
        assert status == 408, body
        assert "BODY_TIMEOUT" in json.loads(body)["detail"]
        assert 0.8 <= elapsed < 3.0, f"cut off after {elapsed:.2f} s; BODY_TIMEOUT is {LIMITS['BODY_TIMEOUT']} s"
        assert headers["connection"] == "close" and closed_by_server(sock, within=2)


@pytest.mark.system
def test_a_request_still_running_at_shutdown_is_cancelled_after_shutdown_timeout(model_path, tmp_path):
    """SIGTERM while a body is still arriving (BODY_TIMEOUT 30 s): the server exits after SHUTDOWN_TIMEOUT,
    not when the body's deadline ends, so its shutdown fits in the pod's grace period."""
    with serving(model_path, tmp_path / "server.log", SHUTDOWN_TIMEOUT="1", BODY_TIMEOUT="30") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(request_head("POST", "/predict", JSON_TYPE, 1000) + b'{"records": [')
        time.sleep(0.2)  # the request is under way, waiting for the rest of its body
        started = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        while still_running(server.pid) and time.monotonic() < started + 10:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        sock.close()
    assert 0.8 <= elapsed < 5, f"exited {elapsed:.1f} s after SIGTERM; SHUTDOWN_TIMEOUT is 1 s"
    assert "graceful shutdown exceeded" in (tmp_path / "server.log").read_text()


def still_running(pid: int) -> bool:
    """True while the process has not exited (a zombie, exited but not yet reaped, counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def trickle_bytes(sock: socket.socket, byte: bytes = b" ", every: float = 0.2, seconds: float = 5) -> None:
    """One byte every `every` seconds: slow enough to hold a socket, fast enough never to look idle."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.send(byte)
            time.sleep(every)
    except OSError:  # the server closed the connection: what the test waits for
        pass


@pytest.mark.system
def test_silent_slow_and_idle_connections_are_closed(served):
    started = time.monotonic()
    address = ("127.0.0.1", served.port)
    with (
        socket.create_connection(address, timeout=5) as silent,
        socket.create_connection(address, timeout=5) as slow,
        socket.create_connection(address, timeout=5) as idle,
    ):
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # then a header byte at a time
        threading.Thread(target=trickle_bytes, args=(slow, b"a"), daemon=True).start()
        idle.sendall(request_head("GET", "/health"))  # one request, then nothing on a kept-alive connection
        assert read_response(idle, "GET")[0] == 200
        assert closed_by_server(silent, within=3), "a connection that sent nothing was kept open"
        status, _, body = read_response(slow, "GET")
        assert status == 408 and "HEADER_TIMEOUT" in json.loads(body)["detail"]
        assert closed_by_server(slow, within=2)
        assert closed_by_server(idle, within=2), "an idle keep-alive connection outlived KEEP_ALIVE_TIMEOUT"
    assert time.monotonic() - started < 4.0


@pytest.mark.system
def test_a_request_head_over_max_header_bytes_gets_431(served):
    limit = served.settings.max_header_bytes
    padding = "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(limit // 1000 + 4))
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        # Never finished (no blank line): the server must stop reading on size, not wait for the end.
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n{padding}".encode())
        status, _, body = read_response(sock, "GET")
        assert status == 431 and "MAX_HEADER_BYTES" in json.loads(body)["detail"]
        assert closed_by_server(sock, within=2)


@pytest.mark.system
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", "application/jsonl"],
)
def test_a_predict_body_that_is_not_json_gets_415(served, records, content_type):
    body = json.dumps({"records": records[:1]}).encode()  # valid JSON, but not declared as such
    status, payload = call(served, "POST", "/predict", body, content_type=content_type)
    assert status == 415, payload
    assert "Content-Type: application/json" in json.loads(payload)["detail"]


@pytest.mark.system
@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=UTF-8", 'application/json;charset="utf-8"']
)
def test_json_content_types_are_accepted(served, records, content_type):
    status, payload = call(
        served, "POST", "/predict", json.dumps({"records": records[:1]}).encode(), content_type=content_type
    )
    assert status == 200, payload


@pytest.mark.system
def test_unknown_methods_share_one_metrics_label(served, client):
    for method in ("PROPFIND", "SEARCH"):  # methods the HTTP parser passes through to the app
        assert call(served, method, "/health", content_type=None)[0] == 405
    assert client.request("BREW", "/predict").status_code == 405  # the test client (like h11) passes any token
    served_text = call(served, "GET", "/metrics", content_type=None)[1].decode()
    assert 'http_requests_total{method="other",route="/health",status="405"} 2.0' in served_text
    assert 'http_requests_total{method="other",route="/predict",status="405"} 1.0' in client.get("/metrics").text
    for text in (served_text, client.get("/metrics").text):
        assert not any(f'method="{method}"' in text for method in ("PROPFIND", "SEARCH", "BREW"))


@pytest.mark.system
def test_connections_past_the_limit_get_503_but_liveness_still_answers(served):
    """Idle sockets past MAX_CONNECTIONS (any pod in the namespace can open them) must not fail the
    liveness probe: that restarts the pod. /ready and /predict get 503, /health 200."""
    limit = int(LIMITS["MAX_CONNECTIONS"])
    held = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(limit + 2)]
    try:
        time.sleep(0.2)  # let the server accept them (it closes them itself after HEADER_TIMEOUT)
        assert call(served, "GET", "/ready", content_type=None)[0] == 503
        assert call(served, "POST", "/predict", b"{}")[0] == 503
        for _ in range(5):
            assert call(served, "GET", "/health", content_type=None) == (200, b'{"status":"ok"}')
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 3
    while call(served, "GET", "/ready", content_type=None)[0] != 200:
        assert time.monotonic() < deadline, "still 503 after the other connections closed"
        time.sleep(0.05)


@pytest.mark.system
def test_liveness_answers_through_130_idle_sockets_at_the_default_cap(model_path, tmp_path):
    """The reported case, at the shipped MAX_CONNECTIONS (128): 130 idle sockets held for longer than
    the liveness probe's failure window at test scale; every probe must get 200."""
    with serving(model_path, tmp_path / "server.log", HEADER_TIMEOUT="30") as server:
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(130)]
        try:
            time.sleep(0.3)
            assert call(server, "GET", "/ready", content_type=None)[0] == 503  # the cap is reached
            probes = [call(server, "GET", "/health", content_type=None, timeout=1)[0] for _ in range(20)]
        finally:
            for sock in held:
                sock.close()
    assert probes == [200] * 20, probes


def test_body_limit_follows_the_batch_limit_and_settings_are_checked():
    assert Settings().max_body_bytes == Settings().max_batch_rows * 512
    assert Settings.from_env({"MAX_BATCH_ROWS": "100"}).max_body_bytes == 51_200
    assert Settings.from_env({"MAX_BATCH_ROWS": "100", "MAX_BODY_BYTES": "4096"}).max_body_bytes == 4096
    with pytest.raises(ValueError, match="HEADER_TIMEOUT"):
        Settings.from_env({"HEADER_TIMEOUT": "0"})
    with pytest.raises(ValueError, match="BODY_TIMEOUT='soon'"):
        Settings.from_env({"BODY_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="DYNAMIC_BATCH_ROWS=512 is over OFFLOAD_ROWS=256"):
        Settings.from_env({"DYNAMIC_BATCH_ROWS": "512"})
    with pytest.raises(ValueError, match="DYNAMIC_BATCH_WINDOW_MS=1000 is over 100"):
        Settings.from_env({"DYNAMIC_BATCH_WINDOW_MS": "1000"})


def send_together(served: Served, bodies: dict[str, bytes]) -> dict[str, tuple[int, dict, bytes]]:
    """POST each body on its own connection, all sent before any answer is read."""
    sockets = {name: socket.create_connection(("127.0.0.1", served.port), timeout=10) for name in bodies}
    try:
        for name, sock in sockets.items():
            sock.sendall(request_head("POST", "/predict", JSON_TYPE, len(bodies[name])) + bodies[name])
        return {name: read_response(sock) for name, sock in sockets.items()}
    finally:
        for sock in sockets.values():
            sock.close()


@pytest.mark.system
def test_requests_that_arrive_together_share_one_model_call_and_each_gets_its_own_rows(model_path, records, tmp_path):
    """Dynamic batching: a batch runs once it holds DYNAMIC_BATCH_ROWS rows (the window only bounds
    the wait), so each round below, sent at once, makes exactly one merged onnxruntime call."""
    lone_surrogate = dict(records[7], purpose="\ud800")  # passes the checks; onnxruntime cannot encode it
    rounds = [
        {"one": records[:1], "two": records[1:3], "five": records[3:8], "wrong": [dict(records[0], age="old")]},
        {"bad": [records[0], lone_surrogate], "six": records[:6]},  # the merged call fails: each is run alone
    ]
    settings = {"DYNAMIC_BATCH_ROWS": "8", "DYNAMIC_BATCH_WINDOW_MS": "100"}
    with serving(model_path, tmp_path / "server.log", **settings) as server:
        answers = {}
        for parts in rounds:
            answers |= send_together(
                server, {name: json.dumps({"records": rows}).encode() for name, rows in parts.items()}
            )
        # Alone, a request's batch never fills: it runs when the window ends.
        alone = call(server, "POST", "/predict", json.dumps({"records": records[:1]}).encode())
        metrics = call(server, "GET", "/metrics", content_type=None)[1].decode()
    assert alone[0] == 200 and json.loads(alone[1]) == json.loads(answers["one"][2])
    for name in ("one", "two", "five", "six"):
        status, _, payload = answers[name]
        assert status == 200, payload
        check_matches(json.loads(payload), direct(model_path, {**rounds[0], **rounds[1]}[name]))
    assert answers["bad"][0] == 422 and "could not use this input" in json.loads(answers["bad"][2])["detail"]
    # Refused when parsed, it never joined a batch.
    assert answers["wrong"][0] == 422 and "records[0].age" in json.loads(answers["wrong"][2])["detail"]
    assert "predict_batch_requests_count 3.0" in metrics and "predict_batch_requests_sum 6.0" in metrics, metrics


# --- POST /encrypted/predict: its own body deadline, admission before buffering, CKKS parameters ---

ENCRYPTED = {"ENCRYPTED_INFERENCE": "true", "ENCRYPTED_BODY_TIMEOUT": "2"}


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.system
def test_an_encrypted_body_sent_a_byte_a_second_is_cut_off_at_its_deadline(model_path, tmp_path):
    pytest.importorskip("tenseal")
    with serving(model_path, tmp_path / "server.log", **ENCRYPTED) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request_head("POST", "/encrypted/predict", JSON_TYPE, 1000) + b'{"context": "')
            started = time.monotonic()
            threading.Thread(target=trickle_bytes, args=(sock, b"A", 1.0, 8), daemon=True).start()
            status, headers, body = read_response(sock)
            elapsed = time.monotonic() - started
        assert status == 408 and "ENCRYPTED_BODY_TIMEOUT" in json.loads(body)["detail"], body
        assert 1.5 <= elapsed < 4.0, f"cut off after {elapsed:.1f} s; ENCRYPTED_BODY_TIMEOUT is 2 s"
        assert headers["connection"] == "close"
        assert call(server, "GET", "/health", content_type=None)[0] == 200


@pytest.mark.system
def test_encrypted_requests_are_admitted_before_their_bodies_are_read(model_path, tmp_path):
    """Four 62 MB bodies at once: one is read and scored at a time, the others wait unread, so the
    server's peak memory grows by less than the four bodies (it grew by 473 MB when each was read
    as it arrived: about two copies of each; one at a time, about 190 MB: one body, parsed)."""
    pytest.importorskip("tenseal")
    size = 62 * 1024 * 1024
    body = b'{"context": "' + b"A" * (size - 40) + b'", "rows": 1}'  # read whole, then refused (409)
    with serving(model_path, tmp_path / "server.log", ENCRYPTED_INFERENCE="true") as server:
        before = memory_kib(server.pid, "VmRSS")
        answers: dict = {}

        def send(name: str) -> None:
            with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
                sock.sendall(request_head("POST", "/encrypted/predict", JSON_TYPE, len(body)) + body)
                answers[name] = read_response(sock)[0]

        senders = [threading.Thread(target=send, args=(name,)) for name in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=180)
        grown = (memory_kib(server.pid, "VmHWM") - before) / 1024
    assert answers == {0: 409, 1: 409, 2: 409, 3: 409}, answers  # each read in full, then the transform differs
    print(f"peak RSS grew by {grown:.0f} MB for 4 x 62 MB bodies")
    assert grown < 4 * 62, f"peak RSS grew by {grown:.0f} MB: the 62 MB bodies were held at once"


def test_ckks_parameters_other_than_the_published_ones_are_refused_naming_them(model_path):
    ts = pytest.importorskip("tenseal")
    from {{ cookiecutter.package_name }}.serving.model import load
    from {{ cookiecutter.package_name }}.tabular.commands import encrypted_client
    from {{ cookiecutter.package_name }}.tabular.serving import encrypted, linear

    model = load(Settings(model_path=model_path))
    served = linear.extract(model)
    spec = json.loads(json.dumps(encrypted.spec(served, model.describe(), 4)))
    request, _ = encrypted_client.encrypt(spec, encrypted_client.prepare(spec, sample_records(TASK, rows=4)))
    assert json.loads(encrypted.score(served, json.dumps(request).encode(), 4))["rows"] == 4  # the published ones
    for degree, moduli in ((16384, [60, 40, 40, 60]), (4096, [40, 20, 40]), (8192, [60, 40, 40, 60])):
        other = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=degree, coeff_mod_bit_sizes=moduli)
        other.global_scale = 2**20
        public = encrypted.encode(other.serialize(save_secret_key=False))
        with pytest.raises(encrypted.RequestError) as refused:
            encrypted.score(served, json.dumps({**request, "context": public}).encode(), 4)
        message = str(refused.value)
        assert refused.value.status == 400 and f"poly_modulus_degree {degree}" in message, message
        assert "Allowed: CKKS with poly_modulus_degree 8192, coefficient moduli [60, 40, 60]" in message
