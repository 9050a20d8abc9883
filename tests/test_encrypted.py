"""Encrypted inference, executed: a baked project trains the linear estimator, its real server runs with
ENCRYPTED_INFERENCE on, and rows go encrypt-request -> HTTP -> decrypt-response.

The decrypted predictions must be onnxruntime's on the same rows (labels identical, probabilities within
1e-4); what leaves the client holds no plaintext value and no secret key, and the server refuses a
context that holds one. A model that is not linear keeps the server from starting, saying why.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
import sys
import urllib.error
import urllib.request

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import tenseal as ts

from conftest import SLUG, cli, project_env, run
from processes import free_port, start, stop, wait_for_http

ROWS = 300


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def serve(project, log, *extra: str) -> tuple:
    port = free_port()
    process = start(
        [sys.executable, "-m", "credit_model", "serve", "--port", str(port), *extra],
        log,
        env=project_env(project, ENCRYPTED_INFERENCE="true"),
        cwd=project,
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def linear_project(baked, tmp_path_factory):
    """The default bake switched to `model.estimator: linear` (its own params), after one pipeline run."""
    project = shutil.copytree(baked(), tmp_path_factory.mktemp("encrypted") / SLUG)
    config = (project / "config.yaml").read_text()
    config = config.replace("estimator: gradient_boosting", "estimator: linear")
    config, replaced = re.subn(r"  params:\n(    .*\n)+", "  params: {C: 1.0}\n", config, count=1)
    assert replaced == 1 and "estimator: linear" in config
    (project / "config.yaml").write_text(config)
    cli(project, "pipeline")
    return project


def test_encrypted_round_trip_matches_onnxruntime_without_plaintext_reaching_the_server(linear_project, tmp_path):
    project = linear_project
    rows = pd.read_csv(project / "data" / "credit_binary.csv").drop(columns="approved").head(ROWS)
    rows.loc[::17, "income"] = np.nan  # missing values: imputed by the published transform, on the client
    rows.loc[::23, "purpose"] = np.nan
    rows.to_csv(tmp_path / "rows.csv", index=False)
    process, url = serve(project, tmp_path / "server.log")
    try:
        wait_for_http(f"{url}/ready", process=process, log=tmp_path / "server.log")
        request, secret = tmp_path / "request.json", tmp_path / "secret.json"
        cli(project, "encrypt-request", str(tmp_path / "rows.csv"), "--server", url, "--output", str(request),
            "--secret", str(secret))  # fmt: skip
        sent = json.loads(request.read_bytes())
        status, answer = post(f"{url}/encrypted/predict", request.read_bytes())
        assert status == 200, answer

        # What was sent holds no plaintext value and only a public context.
        assert set(sent) == {"context", "transform_sha256", "rows", "packs"} and sent["rows"] == ROWS
        body = request.read_text()
        for value in rows["income"].dropna().head(50):
            assert f"{value}" not in body and f"{value:.2f}" not in body
        public = ts.context_from(base64.b64decode(sent["context"]))
        assert not public.is_private()
        with pytest.raises(ValueError, match="secret"):  # what the server holds cannot decrypt its answer
            ts.ckks_vector_from(public, base64.b64decode(answer["scores"][0][0])).decrypt()
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600

        # The server refuses a context that holds the secret key, and says to make a new one.
        private = json.loads(secret.read_bytes())["context"]
        status, refused = post(f"{url}/encrypted/predict", json.dumps({**sent, "context": private}).encode())
        assert status == 400 and "secret key" in refused["detail"], refused
    finally:
        stop(process)

    (tmp_path / "response.json").write_text(json.dumps(answer))
    decrypted = json.loads(
        cli(project, "decrypt-response", str(tmp_path / "response.json"), "--secret", str(secret)).stdout
    )
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {
        name: (rows[name].to_numpy(np.float32) if rows[name].dtype.kind == "f" or rows[name].dtype.kind == "i"
               else rows[name].fillna("missing").astype(str).to_numpy(object)).reshape(-1, 1)
        for name in rows.columns
    }  # fmt: skip
    labels, probabilities = session.run(["label", "probabilities"], feeds)
    assert decrypted["predictions"] == labels.tolist()
    assert np.abs(np.asarray(decrypted["probabilities"]) - probabilities).max() < 1e-4
    assert len(decrypted["scores"]) == ROWS


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_softmax_and_identity_links_match_onnxruntime(baked, task):
    """The generated project's own in-process round trip (tests/tabular/test_encrypted.py) on the other tasks' bakes
    (the binary bake runs it with the rest of its suite)."""
    project = baked(task=task, framework="sklearn")  # the bake test_bake.py makes too
    # --noconftest: the file needs none of the suite's fixtures, and its conftest imports MLflow.
    test = "tests/tabular/test_encrypted.py"
    result = run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", test)
    assert "3 passed" in result.stdout, result.stdout


def test_encrypted_endpoint_refuses_a_model_that_is_not_linear(project_with_model, tmp_path):
    """The default estimator (gradient-boosted trees): the server does not start, and says what to change."""
    process, url = serve(project_with_model, tmp_path / "server.log")
    try:
        assert process.wait(timeout=60) != 0
    finally:
        stop(process)
    log = (tmp_path / "server.log").read_text()
    assert "ENCRYPTED_INFERENCE needs a linear model" in log
    assert "TreeEnsembleClassifier" in log and "model.estimator: linear" in log
