"""Triton Python-backend model: the repository's ONNX file run by onnxruntime, for Triton builds without
the onnxruntime backend. Copied as `1/model.py` by repository.write(backend="python"); it runs inside
Triton's Python backend (numpy, onnxruntime and `triton_python_backend_utils` from Triton's environment),
never in this project's processes.

Triton's dynamic batcher hands `execute` every request it gathered: their rows go to onnxruntime in
one call, and each request gets its own rows back, as the onnxruntime backend would do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.strings = {i.name for i in self.session.get_inputs() if i.type == "tensor(string)"}
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [tensor["name"] for tensor in config["output"]]

    def _feed(self, name: str, requests: list[Any]) -> np.ndarray:
        parts = [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for request in requests]
        values = np.concatenate(parts)
        if name in self.strings:  # Triton's BYTES arrive as bytes; onnxruntime's strings are str
            values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()], object)
            values = values.reshape(-1, 1)
        return values

    def execute(self, requests: list[Any]) -> list[Any]:
        sizes = [pb_utils.get_input_tensor_by_name(request, self.inputs[0]).as_numpy().shape[0] for request in requests]
        results = self.session.run(self.outputs, {name: self._feed(name, requests) for name in self.inputs})
        responses = []
        start = 0
        for size in sizes:
            tensors = [
                pb_utils.Tensor(name, np.asarray(result[start : start + size]))
                for name, result in zip(self.outputs, results, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses
