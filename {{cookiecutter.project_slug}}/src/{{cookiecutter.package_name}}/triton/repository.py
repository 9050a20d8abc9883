"""A Triton model repository for an exported ONNX file, derived from the contract the file carries.

Layout under `root`: `<name>/config.pbtxt` and `<name>/1/model.onnx`. The config's inputs and outputs
are the graph's own (names, types, shapes), checked against the contract (serving/contract.py): one
[N, 1] input per feature (float32 -> TYPE_FP32, string -> TYPE_STRING, KServe `BYTES`), outputs
`label` + `probabilities` or `prediction`. The batch axis is Triton's (`max_batch_size`), so dims leave
it out; a rank-1 output (`label`, [N]) is exposed as [N, 1] through `reshape`, as Triton requires.

Backend `onnxruntime` is what NVIDIA's image runs (on GPU: instance group KIND_GPU). Backend `python`
adds `1/model.py` (python_model.py), which runs the same file with onnxruntime inside Triton's Python
backend, for Triton builds that have no onnxruntime backend; same inputs, outputs and batching.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx

from ..config import Triton
from ..errors import CheckFailed
from ..serving import contract

Backend = Literal["onnxruntime", "python"]
CONFIG_FILE = "config.pbtxt"
VERSION = "1"
MODEL_FILE = "model.onnx"
# ONNX element type -> Triton config type (the KServe v2 datatype is the part after TYPE_, STRING -> BYTES).
TYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
    onnx.TensorProto.STRING: "TYPE_STRING",
}
# What each contract kind must be in the graph (contract.INPUT_TYPES, as Triton names them).
KIND_TYPES = {contract.NUMBER: "TYPE_FP32", "string": "TYPE_STRING"}


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str  # TYPE_FP32, TYPE_STRING, ...
    dims: tuple[int, ...]  # without the batch axis; -1 = any size
    reshape: tuple[int, ...] | None = None  # the model's own shape when it differs from dims


def _tensor(value: onnx.ValueInfoProto, where: str) -> Tensor:
    kind = value.type.tensor_type
    if kind.elem_type not in TYPES:
        raise CheckFailed(
            f"{where} {value.name!r} has ONNX type {onnx.TensorProto.DataType.Name(kind.elem_type)}, which the "
            f"Triton repository does not map (supported: {', '.join(onnx.TensorProto.DataType.Name(t) for t in TYPES)})"
        )
    shape = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in kind.shape.dim]
    if not shape or shape[0] > 0:
        raise CheckFailed(
            f"{where} {value.name!r} has shape {shape or 'unknown'}: Triton batches on the first axis, which "
            "must be dynamic (export the model with a dynamic batch axis)"
        )
    if len(shape) == 1:  # [N]: Triton wants at least one dim beyond the batch axis
        return Tensor(value.name, TYPES[kind.elem_type], (1,), reshape=())
    return Tensor(value.name, TYPES[kind.elem_type], tuple(shape[1:]))


def tensors(model: onnx.ModelProto) -> tuple[list[Tensor], list[Tensor]]:
    """The graph's inputs and outputs as Triton sees them, held to the contract in the file's metadata."""
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    if contract.SCHEMA not in metadata:
        raise CheckFailed(f"the ONNX file has no {contract.SCHEMA} metadata: write the repository from `export`'s file")
    schema = json.loads(metadata[contract.SCHEMA])
    inputs = [_tensor(value, "input") for value in model.graph.input]
    outputs = [_tensor(value, "output") for value in model.graph.output]
    problems = []
    expected = {
        name: KIND_TYPES[contract.NUMBER if kind == contract.NUMBER else "string"]
        for name, kind in contract.kinds(schema).items()
    }
    found = {tensor.name: tensor for tensor in inputs}
    if list(found) != list(expected):
        problems.append(f"inputs are {list(found)}, the contract's features are {list(expected)}")
    for name, data_type in expected.items():
        if name in found and (found[name].data_type, found[name].dims) != (data_type, (1,)):
            problems.append(f"input {name!r} is {found[name].data_type} {list(found[name].dims)}, not {data_type} [1]")
    wanted = contract.outputs(schema["task"])
    missing = [name for name in wanted if name not in {tensor.name for tensor in outputs}]
    if missing:
        problems.append(f"outputs {missing} are missing (a {schema['task']} model gives {list(wanted)})")
    if problems:
        raise CheckFailed("the ONNX file does not meet the contract: " + "; ".join(problems))
    return inputs, [tensor for tensor in outputs if tensor.name in wanted]


# Protobuf text format built line by line: this file is a Jinja template too, where a doubled brace is a tag.
def _block(tensor: Tensor) -> str:
    lines = [f'    name: "{tensor.name}"', f"    data_type: {tensor.data_type}", f"    dims: {list(tensor.dims)}"]
    if tensor.reshape is not None:
        lines.append("    reshape: { shape: " + str(list(tensor.reshape)) + " }")
    return "  {\n" + "\n".join(lines) + "\n  }"


def config_text(name: str, model: onnx.ModelProto, settings: Triton, backend: Backend) -> str:
    """config.pbtxt (protobuf text format) for the file: inputs, outputs, batching, instances, lineage."""
    inputs, outputs = tensors(model)
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    batching = [f"  max_queue_delay_microseconds: {settings.max_queue_delay_microseconds}"]
    if settings.preferred_batch_sizes:
        batching.append(f"  preferred_batch_size: {settings.preferred_batch_sizes}")
    # KIND_GPU for NVIDIA's image on a GPU node; the python backend (Triton builds without the
    # onnxruntime backend, the template's tests) runs onnxruntime on the CPU.
    kind = "KIND_GPU" if backend == "onnxruntime" else "KIND_CPU"
    lines = [
        f"# Written by `export` from {MODEL_FILE}'s inputs, outputs and {contract.SCHEMA} (the ONNX contract).",
        "# instance_group KIND_GPU needs a GPU: on a machine without one Triton refuses to load the model;",
        "# change it to KIND_CPU there (the onnxruntime backend runs on the CPU too).",
        f"name: {json.dumps(name)}",
        f'backend: "{backend}"',
        f"max_batch_size: {settings.max_batch_size}",
        "input [",
        ",\n".join(_block(tensor) for tensor in inputs),
        "]",
        "output [",
        ",\n".join(_block(tensor) for tensor in outputs),
        "]",
        "dynamic_batching {",
        *batching,
        "}",
        "instance_group [ { count: " + str(settings.instance_count) + f" kind: {kind} " + "} ]",
    ]
    # The lineage, readable from a running server (GET /v2/models/<name>/config): what the smoke test checks.
    for key in (contract.RUN_ID, contract.GIT_SHA):
        value = json.dumps(metadata.get(key, ""))
        lines.append("parameters { key: " + json.dumps(key) + " value: { string_value: " + value + " } }")
    return "\n".join(lines) + "\n"


def write(root: Path, name: str, model: onnx.ModelProto, settings: Triton, backend: Backend = "onnxruntime") -> Path:
    """Write (replace) the repository's model folder `root/name`; returns it."""
    if not name or "/" in name or name in (".", ".."):
        raise CheckFailed(f"{name!r} cannot be a Triton model name (a folder name: no '/')")
    text = config_text(name, model, settings, backend)
    root.mkdir(parents=True, exist_ok=True)
    # Built beside the target and swapped in: a reader never sees half a repository.
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    (staging / VERSION).mkdir()
    (staging / CONFIG_FILE).write_text(text)
    (staging / VERSION / MODEL_FILE).write_bytes(model.SerializeToString())
    if backend == "python":
        shutil.copyfile(Path(__file__).with_name("python_model.py"), staging / VERSION / "model.py")
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target
