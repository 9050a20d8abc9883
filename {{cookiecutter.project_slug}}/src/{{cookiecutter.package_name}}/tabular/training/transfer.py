"""Transfer learning: `train` starting from a model trained before (model.init_from, or --init-from).

This module finds the base model behind a reference, checks that it can start this training (same
framework, same input columns), and records where the new model came from. How a framework starts
from the base is its own `Framework.train_from` (tabular.py: weights, frozen trunk, new head;
scikit_learn.py: warm start). The base is read by the framework's own `load_model`, from the
data-only files its `log_model` wrote: nothing is unpickled.

Which bases are taken (model.init_from_trust): by default only a registered version that a release
would ship, i.e. registered from the protected branch with its gate and ONNX parity passed and an
ONNX digest (lineage.trust_problems). Its version tags can be set only by who may edit the registered
model, unlike a run's, which every user with EDIT on the experiment can change; a run's model
(`runs:/`, `models:/m-`) or an unvetted version is refused. `any` takes whatever the reference names.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import lineage
from ...errors import UsageError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient
    from sklearn.compose import ColumnTransformer

    from ..config import Model as ModelSettings
    from ..config import Split
    from ..dataio.data import Schema
    from ..frameworks import Framework

log = logging.getLogger(__name__)

FORMS = "models:/<name>@<alias>, models:/<name>/<version>, models:/m-<id> or runs:/<run id>/model"
PROTECTED_REF = "refs/heads/main"  # the only ref whose registered versions are trusted as bases
OPT_IN = "set model.init_from_trust: any in config.yaml to start from a model you vouch for yourself"
# The references model.init_from takes, checked when config.yaml is read (config.py).
REFERENCE = re.compile(
    r"models:/(?P<logged>m-[0-9a-f]+)|models:/(?P<name>[^/@]+)(@(?P<alias>[^/@]+)|/(?P<version>\d+))"
    r"|runs:/(?P<run>[0-9a-f]+)(/model)?/?"
)


@dataclass(frozen=True)
class Base:
    """The model a training starts from: the reference as given and what it resolved to."""

    reference: str
    model_uri: str  # the logged model, `models:/m-…`, which Framework.load_model reads
    run_id: str
    version: str | None  # the registered version, when the reference went through the registry
    framework: str  # the base run's framework tag

    def lineage(self) -> dict[str, str]:
        """Params and tags of the new run (and, copied by `register`, of its version)."""
        values = {
            lineage.INIT_FROM_URI: self.reference,
            lineage.INIT_FROM_MODEL: self.model_uri,
            lineage.INIT_FROM_RUN_ID: self.run_id,
        }
        return values | ({lineage.INIT_FROM_VERSION: self.version} if self.version else {})


def base_for(client: MlflowClient, settings: ModelSettings, private: bool) -> Base | None:
    """The step of a training run: the base behind model.init_from (None: from scratch), found before the
    run starts, so that a reference that does not resolve records no run. `private`: privacy.enabled."""
    if not settings.init_from:
        return None
    if private:
        raise UsageError(
            "model.init_from with privacy.enabled: DP-SGD trains from scratch here (the base model's own training "
            "is not covered by the budget); remove one of them"
        )
    return resolve(client, settings.init_from, settings.framework, settings.init_from_trust)


def resolve(client: MlflowClient, reference: str, framework: str, trust: str = "registered") -> Base:
    """The base model behind `reference`, in `client`'s tracking server and registry; refused unless
    it was trained by `framework` (weights only fit the network, trees only the estimator, that made them)
    and, with `trust="registered"`, unless it is a registered version a release would ship."""
    from mlflow.exceptions import MlflowException

    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise UsageError(f"model.init_from: {reference!r} is not a model reference; give {FORMS}")
    if trust == "registered" and (match["logged"] or match["run"]):
        raise UsageError(
            f"model.init_from: {reference!r} is a run's model, which anyone who can log to the experiment can "
            f"replace: a base must be a registered version (models:/<name>@<alias> or models:/<name>/<version>) "
            f"registered from {PROTECTED_REF} with its gate and ONNX parity passed; or {OPT_IN}"
        )
    version = None
    try:
        if match["logged"]:
            model_uri = reference
            run_id = client.get_logged_model(match["logged"]).source_run_id or ""
        elif match["run"]:
            run_id = match["run"]
            model_uri = client.get_run(run_id).data.tags.get(lineage.MODEL_URI, "")
            if not model_uri:
                raise UsageError(
                    f"model.init_from: run {run_id} has no trained model (no {lineage.MODEL_URI} tag): "
                    "give the run of a finished `train`"
                )
        else:
            found = (
                client.get_model_version_by_alias(match["name"], match["alias"])
                if match["alias"]
                else client.get_model_version(match["name"], match["version"])
            )
            version, run_id = str(found.version), str(found.run_id)
            model_uri = f"models:/{found.model_id}" if found.model_id else str(found.source)
            if trust == "registered" and (problems := lineage.trust_problems(found.tags, PROTECTED_REF)):
                raise UsageError(
                    f"model.init_from: {reference!r} (version {version}) is not a version a release would ship: "
                    f"{'; '.join(problems)}. Start from a version CI registered on {PROTECTED_REF}, or {OPT_IN}"
                )
        tags = client.get_run(run_id).data.tags
    except MlflowException as error:
        raise UsageError(
            f"model.init_from: {reference!r} was not found in {client.tracking_uri} ({error.message}); "
            f"check the name, alias or version in the registry, or give {FORMS}"
        ) from error
    trained_by = tags.get(lineage.FRAMEWORK, "unknown")
    if trained_by != framework:
        raise UsageError(
            f"model.init_from: {reference!r} (run {run_id}) is a {trained_by} model, and this project trains "
            f"{framework}: a base must come from the same framework (its weights or trees are what is reused)"
        )
    return Base(reference, model_uri, run_id, version, trained_by)


def lineage_of(base: Base | None) -> dict[str, str]:
    """Where the new model started, as its run's params and tags: {} from scratch."""
    return {} if base is None else base.lineage()


def train_from(
    framework: Framework,
    base: Base,
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    settings: ModelSettings,
    split: Split,
) -> Any:
    """The framework's model trained from `base`'s (read back by its own load_model) on these rows."""
    log.info("starting from %s (run %s, version %s)", base.reference, base.run_id, base.version or "-")
    return framework.train_from(base, framework.load_model(base.model_uri), features, target, schema, settings, split)


def check_inputs(base: Base, preprocess: ColumnTransformer, schema: Schema) -> None:
    """The base's fitted preprocessing must read exactly this data's input columns, as the same kinds:
    its weights (or trees) are tied to the columns it encodes, position by position."""
    kinds = {
        column: "number" if name == "numeric" else "text"
        for name, _, columns in preprocess.transformers_
        if name in ("numeric", "categorical")
        for column in columns
    }
    here = {column: "number" if kind == "number" else "text" for column, kind in schema.input_kinds.items()}
    missing = sorted(set(kinds) - set(here))
    extra = sorted(set(here) - set(kinds))
    changed = sorted(
        f"{c} ({kinds[c]} in the base, {here[c]} here)" for c in set(kinds) & set(here) if kinds[c] != here[c]
    )
    problems = [
        *([f"missing here: {', '.join(missing)}"] if missing else []),
        *([f"not in the base: {', '.join(extra)}"] if extra else []),
        *([f"of another kind: {', '.join(changed)}"] if changed else []),
    ]
    if problems:
        raise UsageError(
            f"model.init_from: the base {base.reference} (run {base.run_id}) was trained on other input columns "
            f"than this data's: {'; '.join(problems)}. Transfer needs the same inputs: select them with "
            "data.features (or data.columns), or start from another model"
        )


def check_classes(base: Base, base_classes: list, target: pd.Series) -> None:
    """For a model whose output cannot be replaced (scikit-learn's): the same classes, in the same order."""
    here = sorted(target.unique().tolist())
    if base_classes != here:
        raise UsageError(
            f"model.init_from: the base {base.reference} predicts classes {base_classes}, this data has {here}: "
            "a warm-started estimator keeps its classes; train from scratch (remove model.init_from)"
        )
