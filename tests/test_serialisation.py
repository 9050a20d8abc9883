"""No pickle from the tracking server: what train logs holds no code, and a tampered model file is refused.

Whoever can write to the tracking server's artifact store can replace any file that a later CI job
(evaluate, gate, export) loads. Per framework, one trained project is (a) searched for pickles, file
by file and inside every zip, and (b) given model files that would run a shell command if loaded
unsafely, then loaded through the project's own `framework.load_model`: each must be refused with an
error naming the file, or ignored, and the command must never run.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import FRAMEWORKS, SLUG, cli, run

PICKLE_PROTOCOLS = range(2, 6)  # a pickle of protocol 2-5 starts with 0x80 and its protocol number


def is_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS


def holds_pickle(name: str, content: bytes) -> bool:
    """A pickle by its bytes or its name, or a .npy array of Python objects (which numpy pickles)."""
    return (
        is_pickle(content[:2])
        or name.endswith((".pkl", ".pickle"))
        or (name.endswith(".npy") and b"'descr': '|O'" in content[:200])
    )


def pickles(root: Path) -> dict[str, list[str]]:
    """Files under `root` holding pickles: "" for the file itself, else the zip members that do."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        members = [""] if holds_pickle(path.name, path.read_bytes()) else []
        if zipfile.is_zipfile(path):  # torch.save, .keras and skops files are zips
            with zipfile.ZipFile(path) as archive:
                members += [name for name in archive.namelist() if holds_pickle(name, archive.read(name))]
        if members:
            found[path.relative_to(root).as_posix()] = members
    return found


_trained: dict[str, Path] = {}


@pytest.fixture
def trained(baked, tmp_path_factory):
    """A copy of the baked project after `train`, one per framework per session (tests restore what they change)."""

    def get(framework: str) -> Path:
        if framework not in _trained:
            project = shutil.copytree(baked(framework=framework), tmp_path_factory.mktemp(framework) / SLUG)
            cli(project, "train")
            _trained[framework] = project
        return _trained[framework]

    return get


def logged_model(project: Path) -> Path:
    (folder,) = (project / "mlruns" / "models").glob("*/artifacts")  # one train, one logged model
    return folder


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_train_logs_no_pickle_but_a_weights_only_state_dict(trained, framework):
    store = trained(framework) / "mlruns"  # the run's artifacts and the logged model's
    found = pickles(store)
    if framework != "pytorch":
        assert found == {}
        return
    # torch.save writes a state dict as a zip whose data.pkl holds tensors only: torch's
    # weights_only unpickler reads exactly that and refuses anything else (see the next test).
    assert {Path(path).name for path in found} == {"state_dict.pt"}, found
    import torch

    for path in found:
        assert all(isinstance(v, torch.Tensor) for v in torch.load(store / path, weights_only=True).values())


class Detonator:
    """Unpickling this runs a shell command: what an attacker would put in a model file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def write(path: Path, content: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def torch_cases(cases: Path, marker: Path, model: Path) -> dict[str, str]:
    import torch

    torch.save(Detonator(marker), _new(cases / "state dict runs code" / "state_dict.pt"))
    described = model / "network.json"
    architecture = json.loads(described.read_text()) if described.exists() else {}
    write(
        cases / "architecture is not plain numbers" / "network.json",
        json.dumps(architecture | {"hidden": ["__import__('os').system"]}),
    )
    # What mlflow.pytorch.log_model writes (a pickled module), at the path its loader reads.
    torch.save(Detonator(marker), _new(cases / "flavour's pickle is never read" / "data" / "model.pth"))
    write(
        cases / "flavour's pickle is never read" / "MLmodel",
        yaml.safe_dump(
            {"flavors": {"pytorch": {"model_data": "data", "pytorch_version": str(torch.__version__), "code": None}}}
        ),
    )
    write(cases / "flavour's pickle is never read" / "data" / "pickle_module_info.txt", "pickle")
    return {
        "state dict runs code": "refused: state_dict.pt",
        "architecture is not plain numbers": "refused: network.json",
        "flavour's pickle is never read": "loaded",
    }


def keras_cases(cases: Path, marker: Path, model: Path) -> dict[str, str]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    # Keras marshals a lambda's bytecode into the file; rebuilding the model would run it.
    command = f"touch {shlex.quote(str(marker))}"
    network = keras.Sequential(
        [keras.Input((3,)), keras.layers.Lambda(lambda x: (__import__("os").system(command), x)[1])]
    )
    network.save(_new(cases / "Lambda layer" / "data" / "model.keras"))
    marker.unlink(missing_ok=True)  # building the model ran the lambda here: only loading it elsewhere counts
    # The trained file, with one layer to be taken from another module (how past safe-mode bypasses worked).
    with (
        zipfile.ZipFile(model / "data" / "model.keras") as trained,
        zipfile.ZipFile(_new(cases / "object from outside Keras" / "data" / "model.keras"), "w") as forged,
    ):
        for item in trained.infolist():
            content = trained.read(item)
            if item.filename == "config.json":
                config = json.loads(content)
                config["config"]["layers"][-1]["module"] = "subprocess"
                content = json.dumps(config).encode()
            forged.writestr(item, content)
    return {"Lambda layer": "refused: data/model.keras", "object from outside Keras": "refused: data/model.keras"}


def sklearn_cases(cases: Path, marker: Path, model: Path) -> dict[str, str]:
    import skops.io
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    write(cases / "model is a pickle" / "model.skops", pickle.dumps(Detonator(marker)))
    skops.io.dump(Pipeline([("run", FunctionTransformer(os.system))]), _new(cases / "untrusted type" / "model.skops"))
    # MLflow's own loader takes the format and the trusted types from MLmodel, which is just as writable.
    described = yaml.safe_load((model / "MLmodel").read_text())
    described["flavors"]["sklearn"] |= {"serialization_format": "cloudpickle", "pickled_model": "model.pkl"}
    described["flavors"]["python_function"]["model_path"] = "model.pkl"
    write(cases / "MLmodel asks for cloudpickle" / "MLmodel", yaml.safe_dump(described))
    write(cases / "MLmodel asks for cloudpickle" / "model.pkl", pickle.dumps(Detonator(marker)))
    return {
        "model is a pickle": "refused: model.skops",
        "untrusted type": "refused: model.skops",
        "MLmodel asks for cloudpickle": "loaded",
    }


def ebm_cases(cases: Path, marker: Path, model: Path) -> dict[str, str]:
    """The EBM is logged like scikit-learn's pipeline (mlflow.sklearn, skops): the same forgeries, and
    a skops file of a type skops trusts that is not an EBM."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    skops.io.dump(LogisticRegression(), _new(cases / "not an EBM" / "model.skops"))
    return sklearn_cases(cases, marker, model) | {"not an EBM": "refused: model.skops"}


def _new(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def preprocessing_case(cases: Path, marker: Path) -> dict[str, str]:
    write(cases / "preprocessing is a pickle" / "tabular" / "preprocess.skops", pickle.dumps(Detonator(marker)))
    return {"preprocessing is a pickle": "refused: tabular/preprocess.skops"}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_tampered_model_files_are_refused_never_run(trained, framework, tmp_path):
    project = trained(framework)
    model, cases, marker = logged_model(project), tmp_path / "cases", tmp_path / "code-ran"
    # A .keras file is the same on either backend: the TensorFlow project gets the cases made here on torch.
    cases_for = {
        "sklearn": sklearn_cases,
        "ebm": ebm_cases,
        "pytorch": torch_cases,
        "keras": keras_cases,
        "tensorflow": keras_cases,
    }
    expected = cases_for[framework](cases, marker, model)
    if framework in ("pytorch", "keras", "tensorflow"):
        expected |= preprocessing_case(cases, marker)
    outcomes = json.loads(run(project, "-c", TAMPER, str(model), str(cases)).stdout)

    assert not marker.exists(), f"a tampered model file ran code: {outcomes}"
    for case, outcome in expected.items():
        if outcome == "loaded":
            assert outcomes[case] == "loaded", (case, outcomes[case])
        else:
            file = outcome.removeprefix("refused: ")
            assert outcomes[case].startswith("UntrustedModel:") and file in outcomes[case], (case, outcomes[case])


# Inside the project: lay each case's files over the logged model, load it the way evaluate and
# export do, note what happened, and put the original files back.
TAMPER = """
import json, shutil, sys, tempfile
from pathlib import Path
from credit_model import config
from credit_model.tabular.stages.context import attach

model, cases = Path(sys.argv[1]), Path(sys.argv[2])
context = attach(config.load(Path("config.yaml")), None)
outcomes = {}
with tempfile.TemporaryDirectory() as folder:
    original = shutil.copytree(model, Path(folder) / "original")
    for case in sorted(p for p in cases.iterdir() if p.is_dir()):
        shutil.copytree(case, model, dirs_exist_ok=True)
        try:
            context.framework.load_model(context.model_uri)
            outcomes[case.name] = "loaded"
        except Exception as error:
            outcomes[case.name] = f"{type(error).__name__}: {error}"
        finally:
            shutil.rmtree(model)
            shutil.copytree(original, model)
print(json.dumps(outcomes))
"""
