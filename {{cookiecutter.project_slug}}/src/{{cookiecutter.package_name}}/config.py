"""The configuration every task family shares, read once from config.yaml and passed to every stage.

A family (tabular/, rl/) subclasses Config with its own sections (family.py); `load` validates
config.yaml against the family this project has, so a misspelt key or another family's section fails.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import family as families
from .errors import UsageError

# A project deployed to Azure ML has the folder targets/azureml/ (the post-generation hook removes it otherwise).
DEPLOYS_TO_AZUREML = find_spec(f"{__package__}.targets.azureml") is not None


class Strict(BaseModel):
    # A misspelt key must fail loudly instead of silently falling back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @field_validator("server")
    @classmethod
    def _azureml_runs_the_builtin_server(cls, server: str) -> str:
        # targets/azureml/deployment.yml probes and scores through this server's own routes (/health,
        # /ready, /predict); Triton answers on others, so the endpoint would never become ready.
        if server == "triton" and DEPLOYS_TO_AZUREML:
            raise ValueError(
                "`triton` is deployed by the Kubernetes target only; this project deploys to an Azure ML"
                " online endpoint, which runs the builtin server. Use `builtin`, or bake the project again"
                " with deploy_target=kubernetes"
            )
        return server


class SearchParam(Strict):
    """One model.params key searched by `tune`: `uniform`/`loguniform` between low and high, `int` from low
    to high inclusive, or `choice` among values."""

    type: Literal["uniform", "loguniform", "int", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds_fit_the_type(self) -> SearchParam:
        if self.type == "choice":
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError("a `choice` takes a non-empty `values` list and no low/high")
            return self
        if self.low is None or self.high is None or self.values is not None:
            raise ValueError(f"a `{self.type}` range takes `low` and `high` (and no values)")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("a `loguniform` range needs low > 0")
        if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("an `int` range takes whole numbers")
        return self


class Tune(Strict):
    """The `tune` stage: Ray Tune searches model.params on a validation split carved from the training rows."""

    enabled: bool = Field(False, description="off: `train` uses model.params as written")
    trials: int = Field(8, ge=1, description="parameter sets tried (each a child run of the pipeline's run)")
    metric: str = Field("", description="metrics.py name scored on the validation rows; empty: the task's default")
    mode: Literal["max", "min", ""] = Field("", description="empty: min for rmse/mae/log_loss, else max")
    max_concurrent: int = Field(2, ge=1, description="trials at once (each takes one CPU)")
    num_cpus: int = Field(2, ge=1, description="CPUs of the local Ray instance (ignored inside a Ray job)")
    seed: int = 0
    space: dict[str, SearchParam] = Field(default_factory=dict, description="model.params key -> range")

    @model_validator(mode="after")
    def _has_a_space(self) -> Tune:
        if self.enabled and not self.space:
            raise ValueError("tune is enabled but `space` is empty: give at least one model.params key to search")
        return self


class RayJob(Strict):
    """Running `tune` and `train` as a job on a Ray cluster ($RAY_ADDRESS or --ray-address; README)."""

    # Extra packages the job installs on the cluster; empty: the cluster's image has the project's dependencies.
    pip: list[str] = Field(default_factory=list)
    # Files of the project not sent to the cluster (gitignore syntax), besides the local stores and outputs.
    excludes: list[str] = Field(default_factory=list)
    timeout_minutes: int = Field(120, ge=1, description="the job is stopped when it runs longer")


class Tracking(Strict):
    experiment: str
    model_name: str


class Config(Strict):
    """The shared sections; a family's Config adds its own (and narrows `task`)."""

    task: str
    # Defaults built by each section's own field defaults (pydantic's default_factory keeps mypy exact).
    gate: Gate = Field(default_factory=lambda: Gate.model_validate({}))
    export: Export = Field(default_factory=lambda: Export.model_validate({}))
    serve: Serve = Field(default_factory=lambda: Serve.model_validate({}))
    tune: Tune = Field(default_factory=lambda: Tune.model_validate({}))
    ray: RayJob = Field(default_factory=lambda: RayJob.model_validate({}))
    tracking: Tracking
    root: Path = Field(Path("."), exclude=True, description="folder of config.yaml; paths are relative to it")

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"


def load(path: Path, data: Path | None = None, target: str | None = None, init_from: str | None = None) -> Config:
    """Read config.yaml into this project's family's Config; `data`/`target`/`init_from` from the command
    line replace the file's values (the family says how: family.Family.overrides)."""
    family = families.current()
    if not path.is_file():
        raise UsageError(f"{path}: config file not found (run from the project folder or pass --config)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of sections (task, data, model, ...)")
    raw = family.overrides(raw, data, target, init_from)
    try:
        return family.config.model_validate(raw | {"root": path.resolve().parent})
    except ValidationError as error:
        problems = "\n".join(f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UsageError(f"{path}: invalid configuration\n{problems}") from error
