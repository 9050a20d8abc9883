"""The tabular family's sections of config.yaml: the data, its split, the model and what the stages do with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from .. import config as core
from ..config import Strict
from ..errors import UsageError
from .frameworks import Name as FrameworkName
from .frameworks import declared
from .training.transfer import FORMS, REFERENCE

Task = Literal["binary", "multiclass", "regression"]


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
    # Transfer learning (transfer.py): train from this model instead of from scratch.
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


class Config(core.Config):
    task: Task
    data: Data
    split: Split = Field(default_factory=lambda: Split.model_validate({}))
    model: Model
    explain: Explain = Field(default_factory=lambda: Explain.model_validate({}))
    monitor: Monitor = Field(default_factory=lambda: Monitor.model_validate({}))
    privacy: Privacy = Field(default_factory=lambda: Privacy.model_validate({}))

    @model_validator(mode="before")
    @classmethod
    def _framework_defaults(cls, raw: Any) -> Any:
        """model.params and tune.space left out (or left empty, `params:`) are the framework's own PARAMS and
        TUNE_SPACE (frameworks.declared), which are for its default estimator: with another (sklearn's
        `linear`), params left out are the library's defaults. `params: {}` is written: the library's too."""
        if not isinstance(raw, dict) or not isinstance(model := raw.get("model"), dict):
            return raw
        if model.get("framework") not in get_args(FrameworkName):
            return raw  # the field's own validation names the known frameworks
        params, space = declared(model["framework"])
        if model.get("params") is None and model.get("estimator") in (None, "gradient_boosting"):
            raw = raw | {"model": model | {"params": params}}
        tune = raw.get("tune") or {}
        if isinstance(tune, dict) and tune.get("space") is None:
            raw = raw | {"tune": tune | {"space": space}}
        return raw

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


def overrides(raw: dict[str, Any], data: Path | None, target: str | None, init_from: str | None) -> dict[str, Any]:
    """config.yaml's sections with the command line's --data/--target/--init-from in place of the file's values.

    When another data file is given on the command line, the column schema written for the bundled
    data no longer applies, so it is inferred from the new file instead.
    """
    if data is not None or target is not None:
        section = dict(raw.get("data") or {})
        if data is not None:
            section.update(path=str(data.resolve()), columns={}, features=[])
        if target is not None:
            section.update(target=target, columns={}, features=[])
        raw = raw | {"data": section}
    if init_from is not None:
        raw = raw | {"model": dict(raw.get("model") or {}) | {"init_from": init_from}}
    return raw


def load(path: Path, data: Path | None = None, target: str | None = None, init_from: str | None = None) -> Config:
    """config.yaml as this family's Config (core config.load, typed for the tabular modules that read it)."""
    loaded = core.load(path, data=data, target=target, init_from=init_from)
    if not isinstance(loaded, Config):
        raise UsageError(f"{path}: task {loaded.task!r} is not a tabular task (binary, multiclass, regression)")
    return loaded
