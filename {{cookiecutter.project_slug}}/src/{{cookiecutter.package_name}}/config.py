"""The project's one configuration object, read once from config.yaml and passed to every stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, {% if cookiecutter.deploy_target == "azureml" %}field_validator, {% endif %}model_validator

from .errors import UsageError
from .frameworks import Name as FrameworkName

Task = Literal["binary", "multiclass", "regression"]


class Strict(BaseModel):
    # A misspelt key must fail loudly instead of silently falling back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(Strict):
    type: Literal["number", "string"]
    min: float | None = None
    max: float | None = None
    values: list[str | int] | None = None


class Csv(Strict):
    """How to read a CSV file (a Parquet file carries its own types and needs none of this)."""

    separator: str = Field(",", min_length=1, description="',' ';' '\\t' '|' ...")
    missing_values: list[str] = Field(default_factory=list, description="markers read as missing, e.g. ['?', 'n/a']")
    strip_whitespace: bool = Field(True, description="' State-gov ' reads as 'State-gov'; an all-blank cell as missing")
    encoding: str = "utf-8"


class Data(Strict):
    path: Path
    target: str
    features: list[str] = Field(default_factory=list, description="empty: every column but the target")
    sensitive_features: list[str] = Field(default_factory=list)
    columns: dict[str, Column] = Field(default_factory=dict, description="empty: inferred from the file")
    max_null_fraction: float = Field(0.0, ge=0.0, le=1.0)
    csv: Csv = Field(default_factory=lambda: Csv.model_validate({}))


class Split(Strict):
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    validation_size: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = 42


class Model(Strict):
    framework: FrameworkName  # one of frameworks.MODULES
    # sklearn only (empty: gradient_boosting). `linear` is what encrypted inference needs (README).
    estimator: Literal["gradient_boosting", "linear"] | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _estimator_is_sklearn(self) -> Model:
        if self.estimator is not None and self.framework != "sklearn":
            raise ValueError(
                f"estimator: {self.estimator!r} is a choice of the sklearn framework only; "
                f"remove it for {self.framework} (its network is set by model.params)"
            )
        return self


class Threshold(Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        return self


class Gate(Strict):
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    no_regression: list[str] = Field(default_factory=list)
    regression_tolerance: float = Field(0.01, ge=0.0)


class Export(Strict):
    parity_tolerance: float = Field(1e-4, gt=0.0)


class Monitor(Strict):
    """When `monitor` calls a feature (or the predictions) drifted, and how many rows it needs to say anything."""

    min_rows: int = Field(200, ge=1, description="fewer logged rows in the window: no verdict, its own outcome")
    min_labelled_rows: int = Field(100, ge=1, description="fewer labelled rows: metrics and fairness are not judged")
    # Drifted: PSI above psi_max (large enough to matter) and the test's p-value below p_value (not noise).
    psi_max: float = Field(0.2, gt=0.0, description="population stability index")
    p_value: float = Field(0.01, gt=0.0, lt=1.0, description="KS (numbers) or chi-square (categories)")
    bins: int = Field(10, ge=2, description="quantile bins of the reference for the PSI of a number")


class Triton(Strict):
    """The Triton model repository `export` writes beside the ONNX file (triton/repository.py)."""

    max_batch_size: int = Field(
        256, ge=1, description="rows Triton may put in one batch (requests of more are refused)"
    )
    # Triton's dynamic batcher: requests arriving within this delay are run as one batch.
    max_queue_delay_microseconds: int = Field(500, ge=0)
    preferred_batch_sizes: list[int] = Field(default_factory=list, description="empty: as large as arrived")
    instance_count: int = Field(1, ge=1, description="model instances per GPU")


class Serve(Strict):
    """Which server the release's image runs: this project's own (FastAPI + onnxruntime) or NVIDIA Triton."""

    server: Literal["builtin", "triton"] = "builtin"
    triton: Triton = Field(default_factory=lambda: Triton.model_validate({}))
{%- if cookiecutter.deploy_target == "azureml" %}

    @field_validator("server")
    @classmethod
    def _azureml_runs_the_builtin_server(cls, server: str) -> str:
        # deploy/azureml/deployment.yml probes and scores through this server's own routes (/health,
        # /ready, /predict); Triton answers on others, so the endpoint would never become ready.
        if server == "triton":
            raise ValueError(
                "`triton` is deployed by the Kubernetes target only; this project deploys to an Azure ML"
                " online endpoint, which runs the builtin server. Use `builtin`, or bake the project again"
                " with deploy_target=kubernetes"
            )
        return server
{%- endif %}


class Privacy(Strict):
    """Differential privacy (README, "Differential privacy"): DP-SGD training, and DP statistics of the data."""

    # DP-SGD (Opacus) in place of plain training: PyTorch projects only.
    enabled: bool = False
    target_epsilon: float = Field(3.0, gt=0.0, description="budget of the whole training; smaller: more private")
    target_delta: float = Field(1e-5, gt=0.0, lt=1.0, description="chance the epsilon bound fails; well below 1/rows")
    max_grad_norm: float = Field(1.0, gt=0.0, description="each row's gradient is clipped to this L2 norm")
    # Group sizes and label rates of the training rows with OpenDP noise (privacy/group_stats.json), for
    # sharing outside the team; its own budget, spent once per training run. Empty: not computed.
    report_epsilon: float | None = Field(None, gt=0.0)


class Tracking(Strict):
    experiment: str
    model_name: str


class Config(Strict):
    task: Task
    data: Data
    # Defaults built by each section's own field defaults (pydantic's default_factory keeps mypy exact).
    split: Split = Field(default_factory=lambda: Split.model_validate({}))
    model: Model
    gate: Gate = Field(default_factory=lambda: Gate.model_validate({}))
    export: Export = Field(default_factory=lambda: Export.model_validate({}))
    monitor: Monitor = Field(default_factory=lambda: Monitor.model_validate({}))
    serve: Serve = Field(default_factory=lambda: Serve.model_validate({}))
    privacy: Privacy = Field(default_factory=lambda: Privacy.model_validate({}))
    tracking: Tracking
    root: Path = Field(Path("."), exclude=True, description="folder of config.yaml; paths are relative to it")

    @model_validator(mode="after")
    def _private_training_is_pytorch(self) -> Config:
        if self.privacy.enabled and self.model.framework != "pytorch":
            raise ValueError(
                f"privacy.enabled: DP-SGD training is implemented for the pytorch framework only, not "
                f"{self.model.framework}; set privacy.enabled: false (privacy.report_epsilon works with every "
                "framework), or bake a project with framework=pytorch"
            )
        return self

    @property
    def data_path(self) -> Path:
        return self.data.path if self.data.path.is_absolute() else self.root / self.data.path

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"


def load(path: Path, data: Path | None = None, target: str | None = None) -> Config:
    """Read config.yaml; `data`/`target` from the command line replace the file's values.

    When another data file is given on the command line, the column schema written for the bundled
    data no longer applies, so it is inferred from the new file instead.
    """
    if not path.is_file():
        raise UsageError(f"{path}: config file not found (run from the project folder or pass --config)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of sections (task, data, model, ...)")
    if data is not None or target is not None:
        section = dict(raw.get("data") or {})
        if data is not None:
            section.update(path=str(data.resolve()), columns={}, features=[])
        if target is not None:
            section.update(target=target, columns={}, features=[])
        raw["data"] = section
    try:
        return Config(**raw, root=path.resolve().parent)
    except ValidationError as error:
        problems = "\n".join(f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UsageError(f"{path}: invalid configuration\n{problems}") from error
