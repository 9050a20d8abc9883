"""Encrypted inference on this task's linear contract model, in-process: the client's code prepares and
encrypts, the server's code scores the request body with the public context only, the client decrypts.

The template's tests run the same over HTTP on a trained model; here each task's link function
(sigmoid, softmax, identity) is held to onnxruntime's answer on the same rows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.serving import extensions
from {{ cookiecutter.package_name }}.serving.model import load
from {{ cookiecutter.package_name }}.serving.settings import Settings
from {{ cookiecutter.package_name }}.tabular.commands import encrypted_client
from {{ cookiecutter.package_name }}.tabular.serving import encrypted, encrypted_api, linear

from contract_model import build, direct, sample_records

TASK = "{{ cookiecutter.task }}"
ROWS = 200


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The contract model, its linear part as the server extracts it, and the model's path."""
    path = build(tmp_path_factory.mktemp("encrypted") / "model.onnx", TASK)
    model = load(Settings(model_path=path))
    return model, linear.extract(model), path


def test_decrypted_predictions_match_onnxruntime(served):
    model, served, path = served
    spec = json.loads(json.dumps(encrypted.spec(served, model.describe(), ROWS)))  # as a client receives it
    records = sample_records(TASK, rows=ROWS)
    request, secret = encrypted_client.encrypt(spec, encrypted_client.prepare(spec, records))
    answer = json.loads(encrypted.score(served, json.dumps(request).encode(), ROWS))
    result = encrypted_client.decrypt(answer, secret)

    expected = direct(path, records)
    if TASK == "regression":
        predicted = np.asarray(result["predictions"])
        assert np.abs(predicted - expected["prediction"].reshape(-1)).max() < 1e-4 * max(1.0, np.abs(predicted).max())
    else:
        assert result["predictions"] == expected["label"].tolist()
        assert np.abs(np.asarray(result["probabilities"]) - expected["probabilities"]).max() < 1e-4


def test_the_server_adds_the_encrypted_routes_only_when_turned_on(served):
    """The tabular folder's serving/ registers the endpoint (serving/extensions.py); its settings are its own."""
    model, _, path = served
    settings = Settings(model_path=path)
    assert extensions.load(model, settings, env={}) == []
    (endpoint,) = extensions.load(model, settings, env={"ENCRYPTED_INFERENCE": "true", "ENCRYPTED_BODY_TIMEOUT": "2"})
    assert endpoint.routes == {"/encrypted", "/encrypted/predict"}
    assert isinstance(endpoint, encrypted_api.EncryptedEndpoint) and endpoint.body_timeout == 2.0


def test_a_request_past_the_row_limit_or_for_another_transform_is_refused(served):
    model, served, _ = served
    spec = json.loads(json.dumps(encrypted.spec(served, model.describe(), 4)))
    request, _ = encrypted_client.encrypt(spec, encrypted_client.prepare(spec, sample_records(TASK, rows=4)))
    with pytest.raises(encrypted.RequestError, match="MAX_BATCH_ROWS") as refused:
        encrypted.score(served, json.dumps(request).encode(), 3)
    assert refused.value.status == 422
    with pytest.raises(encrypted.RequestError, match="another model") as refused:
        encrypted.score(served, json.dumps({**request, "transform_sha256": "0" * 64}).encode(), 4)
    assert refused.value.status == 409
