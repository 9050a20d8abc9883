"""The Triton model repository of a contract model, and the KServe v2 requests sent to Triton.

Triton itself is not run here: the template's tests load the repository in a real `tritonserver`
and compare its answers with onnxruntime (README, "NVIDIA Triton").
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.errors import CheckFailed
from {{ cookiecutter.package_name }}.serving import contract
from {{ cookiecutter.package_name }}.triton import kserve

from contract_model import build

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
NAME = "{{ cookiecutter.project_slug }}"
TASK = "{{ cookiecutter.task }}"  # the bundled data this project has


def test_repository_follows_the_contract(tmp_path, capsys):
    model = build(tmp_path / "model.onnx", TASK)
    output = tmp_path / "repository"
    arguments = ["--model", str(model), "--output", str(output), "--config", str(CONFIG), "--backend", "python"]
    assert main(["triton-repository", *arguments, "--publish"]) == 0
    assert f"model_name={NAME}" in capsys.readouterr().out
    folder = output / NAME
    assert (folder / "1" / "model.onnx").read_bytes() == model.read_bytes()
    assert (folder / "1" / "model.py").read_text().startswith('"""Triton Python-backend model')
    text = (folder / "config.pbtxt").read_text()
    assert f'name: "{NAME}"' in text and 'backend: "python"' in text and "kind: KIND_CPU" in text
    assert 'name: "age"\n    data_type: TYPE_FP32\n    dims: [1]' in text
    assert 'name: "sex"\n    data_type: TYPE_STRING\n    dims: [1]' in text
    outputs = ["prediction"] if TASK == "regression" else ["label", "probabilities"]
    assert [line.split('"')[1] for line in text.split("output [")[1].splitlines() if "name:" in line] == outputs
    # Written again over itself: the folder is replaced whole, nothing is left from before.
    (folder / "stale").write_text("")
    assert main(["triton-repository", *arguments[:-2], "--backend", "onnxruntime"]) == 0
    assert not (folder / "stale").exists() and not (folder / "1" / "model.py").exists()
    assert "kind: KIND_GPU" in (folder / "config.pbtxt").read_text()


def test_a_file_off_the_contract_is_refused(tmp_path):
    model = onnx.load(str(build(tmp_path / "model.onnx", TASK)))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    assert (
        main(["triton-repository", "--model", str(bare), "--output", str(tmp_path / "r"), "--config", str(CONFIG)]) == 1
    )
    assert not (tmp_path / "r" / NAME).exists()


def test_kserve_request_carries_each_feature_as_the_contract_types_it(tmp_path):
    model = onnx.load(str(build(tmp_path / "model.onnx", TASK)))
    schema = json.loads({entry.key: entry.value for entry in model.metadata_props}[contract.SCHEMA])
    records = [
        {feature["name"]: 1.5 if feature["type"] == "number" else None for feature in schema["features"]}
        for _ in range(2)
    ]
    body = kserve.request_body(records, schema)
    by_name = {tensor["name"]: tensor for tensor in body["inputs"]}
    assert by_name["age"] == {"name": "age", "shape": [2, 1], "datatype": "FP32", "data": [1.5, 1.5]}
    assert by_name["sex"] == {"name": "sex", "shape": [2, 1], "datatype": "BYTES", "data": ["missing", "missing"]}
    records[1]["age"] = None  # a missing number: NaN, which JSON cannot carry
    with pytest.raises(CheckFailed, match="'age' has a missing value"):
        kserve.request_body(records, schema)
