"""Tracking on a managed service, Databricks or Azure ML: what each needs, checked before MLflow tries.

Left to MLflow, a missing credential or plugin surfaces deep in the first request as a long traceback
(Databricks: "Reading Databricks credential configuration failed"; Azure ML without its plugin:
"unsupported URI"; with the plugin but no login, a dozen credential failures after network timeouts).
These checks read only the environment and the Databricks config file, never the network: they catch
what is plainly missing, say where to set it, and leave anything subtler to the service itself.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlparse

from .errors import UsageError

SEE = 'See infra/README.md, "Tracking on Databricks or Azure ML".'
# Newer azureml-mlflow releases require mlflow-skinny<=3.15 and pip silently downgrades MLflow for them.
AZUREML_PLUGIN = "azureml-mlflow==1.60.0"
AZUREML_URI = re.compile(
    r"azureml://[\w.-]+/mlflow/v\d+\.\d+/subscriptions/[\w-]+/resourceGroups/[^/]+"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/[^/?#]+"
)


def check(uri: str) -> None:
    """UsageError (one paragraph: what is missing, where to set it) when `uri` cannot work as configured."""
    if message := problem(uri, os.environ):
        raise UsageError(message)


def problem(uri: str, environ: Mapping[str, str], azureml_plugin: bool | None = None) -> str | None:
    """What keeps `uri` from working here, or None; `azureml_plugin` None: look for the installed plugin."""
    scheme = urlparse(uri).scheme or uri
    if scheme in ("databricks", "databricks-uc"):
        return databricks_problem(uri, environ)
    if scheme == "azureml":
        return azureml_problem(uri, environ, _has_azureml_plugin() if azureml_plugin is None else azureml_plugin)
    return None


# --- Databricks ------------------------------------------------------------------------------------


def databricks_problem(uri: str, environ: Mapping[str, str]) -> str | None:
    if environ.get("DATABRICKS_RUNTIME_VERSION"):
        return None  # a job or notebook on Databricks: the runtime supplies host and credentials
    where = f"MLFLOW_TRACKING_URI={uri!r}"
    # databricks://<profile> (or the legacy databricks://<scope>:<prefix>) names a profile of the config file.
    named = urlparse(uri).netloc.split(":")[0] if "://" in uri else ""
    profile = named or environ.get("DATABRICKS_CONFIG_PROFILE", "")
    config_file = Path(environ.get("DATABRICKS_CONFIG_FILE") or Path(environ.get("HOME", "~")) / ".databrickscfg")
    profiles = _profiles(config_file.expanduser())
    if profile and profile not in profiles:
        return (
            f"{where} uses the Databricks profile {profile!r}, which is not in {config_file}: create it with "
            f"`databricks auth login --profile {profile} --host <workspace URL>`, or use "
            f"MLFLOW_TRACKING_URI=databricks with DATABRICKS_HOST and a credential in the environment. {SEE}"
        )
    section = profiles.get(profile or "DEFAULT", {})
    host = environ.get("DATABRICKS_HOST") or section.get("host")
    if not host:
        return (
            f"{where} but no Databricks workspace is named: set DATABRICKS_HOST to the workspace URL "
            f"(https://adb-<workspace-id>.<n>.azuredatabricks.net) in the environment (in GitHub Actions: a "
            f"variable of the job's environment), or `host` in the [{profile or 'DEFAULT'}] profile of {config_file}. "
            f"{SEE}"
        )
    credential = _databricks_credential(environ, section)
    if credential is None:
        return (
            f"{where} with workspace {host} but no credential: in GitHub Actions set DATABRICKS_AUTH_TYPE=github-oidc "
            "and DATABRICKS_CLIENT_ID (a service principal with a federation policy for this repository; the job "
            "needs `permissions: id-token: write`), or a DATABRICKS_TOKEN secret in the job's environment; on a "
            f"laptop `databricks auth login --host {host}` and MLFLOW_TRACKING_URI=databricks://<profile>. {SEE}"
        )
    if credential == "github-oidc":
        missing = [
            name for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN") if not environ.get(name)
        ]
        if not environ.get("DATABRICKS_CLIENT_ID") and not section.get("client_id"):
            missing.insert(0, "DATABRICKS_CLIENT_ID")
        if missing:
            return (
                f"{where} with DATABRICKS_AUTH_TYPE=github-oidc, but {', '.join(missing)} is unset: GitHub's OIDC "
                "token exists only inside an Actions job with `permissions: id-token: write`, and DATABRICKS_CLIENT_ID "
                "names the service principal whose federation policy trusts this repository. Elsewhere use "
                f"`databricks auth login` or a token. {SEE}"
            )
    return None


def _profiles(config_file: Path) -> dict[str, dict[str, str]]:
    """The sections of ~/.databrickscfg (DEFAULT included), or nothing when the file is absent or unreadable."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config_file)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return {}
    sections = {name: dict(parser[name]) for name in parser.sections()}
    if parser.defaults():
        sections["DEFAULT"] = dict(parser.defaults())
    return sections


def _databricks_credential(environ: Mapping[str, str], section: Mapping[str, str]) -> str | None:
    """Which kind of credential the environment or the profile gives (the SDK's auth_type when named)."""
    auth_type = environ.get("DATABRICKS_AUTH_TYPE") or section.get("auth_type")
    if auth_type:
        return auth_type
    for source, kinds in ((environ, _ENV_CREDENTIALS), (section, _PROFILE_CREDENTIALS)):
        for names, kind in kinds:
            if all(source.get(name) for name in names):
                return kind
    return None


# The SDK's own names, in the environment and in a profile of ~/.databrickscfg.
_ENV_CREDENTIALS = (
    (("DATABRICKS_TOKEN",), "pat"),
    (("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"), "oauth-m2m"),
    (("ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_TENANT_ID"), "azure-client-secret"),
    (("DATABRICKS_USERNAME", "DATABRICKS_PASSWORD"), "basic"),
)
_PROFILE_CREDENTIALS = (
    (("token",), "pat"),
    (("client_id", "client_secret"), "oauth-m2m"),
    (("azure_client_id", "azure_client_secret", "azure_tenant_id"), "azure-client-secret"),
    (("username", "password"), "basic"),
)


# --- Azure ML --------------------------------------------------------------------------------------


def azureml_problem(uri: str, environ: Mapping[str, str], plugin: bool) -> str | None:
    where = "MLFLOW_TRACKING_URI is an Azure ML workspace (azureml://...)"
    if not AZUREML_URI.match(uri):
        return (
            f"{where} but not of the form azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<id>/"
            "resourceGroups/<group>/providers/Microsoft.MachineLearningServices/workspaces/<name>: copy the "
            f"workspace's own with `az ml workspace show --query mlflow_tracking_uri -o tsv`. {SEE}"
        )
    if not plugin:
        return (
            f"{where} but the azureml-mlflow plugin that lets MLflow talk to it is not installed: "
            f"`pip install -e '.[azureml]'` ({AZUREML_PLUGIN}; newer releases would downgrade MLflow), after "
            f"requirements.lock in CI's install step. {SEE}"
        )
    if environ.get("MLFLOW_TRACKING_TOKEN") or environ.get("AZUREML_RUN_ID"):
        return None  # a job on Azure ML: the workspace supplies the token
    service_principal = environ.get("AZURE_CLIENT_ID") and environ.get("AZURE_TENANT_ID")
    secret = any(
        environ.get(name)
        for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE")
    )
    managed_identity = environ.get("IDENTITY_ENDPOINT") or environ.get("MSI_ENDPOINT")
    if (service_principal and secret) or managed_identity or shutil.which("az", path=environ.get("PATH")):
        return None
    return (
        f"{where} but no Azure credential is available: in GitHub Actions run azure/login with OpenID Connect "
        "(an app registration with a federated credential for this repository and environment, the AzureML Data "
        "Scientist role on the workspace, `permissions: id-token: write`) before this step; on a laptop `az login`; "
        "or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE) for a "
        f"service principal. {SEE}"
    )


def _has_azureml_plugin() -> bool:
    return any(point.name == "azureml" for point in entry_points(group="mlflow.tracking_store"))
