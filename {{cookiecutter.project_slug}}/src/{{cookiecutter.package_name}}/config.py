"""The project's one configuration object, read once from config.yaml and passed to every stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, {% if cookiecutter.task != "reinforcement" or cookiecutter.deploy_target == "azureml" %}field_validator, {% endif %}model_validator

from .errors import UsageError
{%- if cookiecutter.task != "reinforcement" %}
from .frameworks import Name as FrameworkName
from .tabular.training.transfer import FORMS, REFERENCE
{%- endif %}

{% if cookiecutter.task == "reinforcement" %}Task = Literal["reinforcement"]{% else %}Task = Literal["binary", "multiclass", "regression"]{% endif %}


class Strict(BaseModel):
    # A misspelt key must fail loudly instead of silently falling back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)

{%- if cookiecutter.task == "reinforcement" %}


class Reinforcement(Strict):
    """The environment, what `validate` holds it to, and PPO's budget (RLlib, rl/policy.py)."""

    environment: str = Field(
        "CartPole-v1", description="a Gymnasium id, or `package.module:ClassName` for your own gymnasium.Env"
    )
    env_config: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the environment")
    # What `validate` checks the environment's spaces against: a changed environment fails before training.
    observation_size: int = Field(4, ge=1, description="length of the (flat, Box) observation")
    observation_low: list[float] | None = Field(None, description="declared lower bounds (None: not checked)")
    observation_high: list[float] | None = Field(None, description="declared upper bounds (None: not checked)")
    actions: int = Field(2, ge=2, description="size of the Discrete action space")
    seed: int = 42
    iterations: int = Field(4, ge=1, description="PPO training iterations (each samples train_batch_size steps)")
    train_batch_size: int = Field(1000, ge=32)
    minibatch_size: int = Field(250, ge=8)
    num_epochs: int = Field(6, ge=1)
    learning_rate: float = Field(0.0003, gt=0.0)
    hidden: list[int] = Field(default_factory=lambda: [32, 32], description="tanh layers of the policy network")
    evaluation_episodes: int = Field(10, ge=1, description="seeded greedy episodes `evaluate` runs")
    parity_observations: int = Field(256, ge=1, description="observations `export` compares RLlib and ONNX on")

    @model_validator(mode="after")
    def _bounds_fit(self) -> Reinforcement:
        for name in ("observation_low", "observation_high"):
            bounds = getattr(self, name)
            if bounds is not None and len(bounds) != self.observation_size:
                raise ValueError(f"{name} has {len(bounds)} values for observation_size {self.observation_size}")
        return self
{%- else %}


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
    # Transfer learning (tabular/training/transfer.py): train from this model instead of from scratch.
    init_from: str | None = Field(None, description=f"empty: from scratch; else {FORMS}")
    # `registered`: the base must be a registry version a release would ship (transfer.resolve); `any`: any
    # model the reference names, a run's included (you vouch for it: it is read as this project's own).
    init_from_trust: Literal["registered", "any"] = "registered"

    @field_validator("init_from")
    @classmethod
    def _is_a_reference(cls, value: str | None) -> str | None:
        if value is not None and not REFERENCE.fullmatch(value):
            raise ValueError(f"{value!r} is not a model reference; give {FORMS}")
        return value

    @model_validator(mode="after")
    def _estimator_is_sklearn(self) -> Model:
        if self.estimator is not None and self.framework != "sklearn":
            raise ValueError(
                f"estimator: {self.estimator!r} is a choice of the sklearn framework only; "
                f"remove it for {self.framework} (its network is set by model.params)"
            )
        return self


{%- endif %}


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


class ImportanceGate(Strict):
    """Bounds on the explain stage's global importance, checked by `gate`; both off by default."""

    forbidden_top_k: int = Field(
        0, ge=0, description="no sensitive feature (data.sensitive_features) among the k top drivers; 0: off"
    )
    max_share: dict[str, float] = Field(
        default_factory=dict, description="column -> the most of total importance it may carry, e.g. {sex: 0.05}"
    )

    @model_validator(mode="after")
    def _shares_are_fractions(self) -> ImportanceGate:
        wrong = {column: bound for column, bound in self.max_share.items() if not 0.0 <= bound <= 1.0}
        if wrong:
            raise ValueError(f"max_share: a share is a fraction of total importance, from 0 to 1 (got {wrong})")
        return self


class Explain(Strict):
    """How many held-out rows `explain` works on: bounded, so the stage stays fast for every framework."""

    sample_rows: int = Field(200, ge=1, description="test rows explained for the global importance")
    background_rows: int = Field(20, ge=1, description="other test rows standing in for 'feature unknown'")
    local_rows: int = Field(5, ge=0, description="rows whose explanation is written out one by one")
    orders: int = Field(2, ge=1, description="model-agnostic explainer: random column orders per row (+ reversed)")
    gate: ImportanceGate = Field(default_factory=lambda: ImportanceGate.model_validate({}))


class Export(Strict):
    parity_tolerance: float = Field(1e-4, gt=0.0)


{%- if cookiecutter.task != "reinforcement" %}


class Monitor(Strict):
    """When `monitor` calls a feature (or the predictions) drifted, and how many rows it needs to say anything."""

    min_rows: int = Field(200, ge=1, description="fewer logged rows in the window: no verdict, its own outcome")
    min_labelled_rows: int = Field(100, ge=1, description="fewer labelled rows: metrics and fairness are not judged")
    # Labels come from /feedback with a token or from import-labels (their source is logged); one
    # without a source was written some other way. Below this share, the window's labels cannot be
    # trusted: no verdict (`untrusted_labels`), never a failure that opens an issue or retrains.
    min_trusted_label_share: float = Field(
        0.95, ge=0.0, le=1.0, description="share of the labelled rows whose label came from an authenticated source"
    )
    # Drifted: PSI above psi_max (large enough to matter) and the test's p-value below p_value (not noise).
    psi_max: float = Field(0.2, gt=0.0, description="population stability index")
    p_value: float = Field(0.01, gt=0.0, lt=1.0, description="KS (numbers) or chi-square (categories)")
    bins: int = Field(10, ge=2, description="quantile bins of the reference for the PSI of a number")


{%- endif %}


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
{%- if cookiecutter.task == "reinforcement" %}
    rl: Reinforcement = Field(default_factory=lambda: Reinforcement.model_validate({}))
    gate: Gate = Field(default_factory=lambda: Gate.model_validate({}))
    export: Export = Field(default_factory=lambda: Export.model_validate({}))
{%- else %}
    data: Data
    # Defaults built by each section's own field defaults (pydantic's default_factory keeps mypy exact).
    split: Split = Field(default_factory=lambda: Split.model_validate({}))
    model: Model
    gate: Gate = Field(default_factory=lambda: Gate.model_validate({}))
    explain: Explain = Field(default_factory=lambda: Explain.model_validate({}))
    export: Export = Field(default_factory=lambda: Export.model_validate({}))
    monitor: Monitor = Field(default_factory=lambda: Monitor.model_validate({}))
{%- endif %}
    serve: Serve = Field(default_factory=lambda: Serve.model_validate({}))
    tune: Tune = Field(default_factory=lambda: Tune.model_validate({}))
    ray: RayJob = Field(default_factory=lambda: RayJob.model_validate({}))
{%- if cookiecutter.task != "reinforcement" %}
    privacy: Privacy = Field(default_factory=lambda: Privacy.model_validate({}))
{%- endif %}
    tracking: Tracking
    root: Path = Field(Path("."), exclude=True, description="folder of config.yaml; paths are relative to it")
{% if cookiecutter.task != "reinforcement" %}
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
{% endif %}
    @property
    def outputs(self) -> Path:
        return self.root / "outputs"


def load(path: Path, data: Path | None = None, target: str | None = None, init_from: str | None = None) -> Config:
    """Read config.yaml; `data`/`target`/`init_from` from the command line replace the file's values.

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
        if raw.get("task") == "reinforcement":
            raise UsageError(
                "--data/--target: a reinforcement-learning project reads no table; "
                "its episodes come from the environment in config.yaml's rl.environment"
            )
        section = dict(raw.get("data") or {})
        if data is not None:
            section.update(path=str(data.resolve()), columns={}, features=[])
        if target is not None:
            section.update(target=target, columns={}, features=[])
        raw["data"] = section
    if init_from is not None:
        raw["model"] = dict(raw.get("model") or {}) | {"init_from": init_from}
    try:
        return Config(**raw, root=path.resolve().parent)
    except ValidationError as error:
        problems = "\n".join(f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UsageError(f"{path}: invalid configuration\n{problems}") from error
