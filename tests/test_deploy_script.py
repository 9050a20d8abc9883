"""The Kubernetes target's deploy.sh decisions, run for real against a stand-in `kubectl` (no cluster here).

The stand-in answers `kubectl kustomize` with the real kubectl (so the baked overlays are rendered
for real), reports the Deployment's available replicas before the deploy, fails or passes the
rollout as each case asks, and records every call. `curl` and `sleep` are stand-ins too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PACKAGE, SLUG

BIN = Path(sys.executable).parent
PLACEHOLDER = "sha256:" + "0" * 64
REAL_DIGEST = "sha256:" + "ab" * 32
KUBERNETES = f"src/{PACKAGE}/targets/kubernetes"  # the target's folder, from the project root

FAKE_KUBECTL = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$*" in
  kustomize*) exec "$REAL_KUBECTL" "$@" ;;
  *" get deployment/"*) printf '%s' "$AVAILABLE" ;;
  *" rollout status "*) exit "$ROLLOUT_RC" ;;
esac
exit 0
"""


@pytest.fixture
def deploy(baked, tmp_path):
    if not (BIN / "kubectl").exists():
        pytest.fail(f"kubectl not found in {BIN}: install requirements-test.txt (scripts/setup-venv.sh)")
    project = shutil.copytree(baked(), tmp_path / SLUG)
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, body in (
        ("kubectl", FAKE_KUBECTL),
        ("curl", '#!/usr/bin/env bash\nexit "$CURL_RC"\n'),
        ("sleep", "#!/usr/bin/env bash\nexit 0\n"),
    ):
        (fakes / name).write_text(body)
        (fakes / name).chmod(0o755)
    calls = tmp_path / "calls.log"

    def run(*, image_set: bool = True, available: str = "", rollout_rc: int = 0, curl_rc: int = 0):
        overlay = project / KUBERNETES / "k8s" / "overlays" / "staging"
        if image_set:  # what the release's `kustomize edit set image model-server=...@sha256:...` does
            kustomization = overlay / "kustomization.yaml"
            kustomization.write_text(kustomization.read_text().replace(PLACEHOLDER, REAL_DIGEST))
        calls.write_text("")
        env = {
            **os.environ,
            "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}",
            "CALLS": str(calls),
            "REAL_KUBECTL": str(BIN / "kubectl"),
            "AVAILABLE": available,
            "ROLLOUT_RC": str(rollout_rc),
            "CURL_RC": str(curl_rc),
            "ROLLOUT_TIMEOUT": "5s",
        }
        result = subprocess.run(
            ["bash", f"{KUBERNETES}/deploy.sh", str(overlay), f"{SLUG}-staging"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return result, calls.read_text().splitlines()

    return run


def test_an_overlay_with_the_placeholder_image_is_refused_before_anything_is_applied(deploy):
    result, calls = deploy(image_set=False)
    assert result.returncode == 1 and "placeholder image digest" in result.stdout, result.stdout + result.stderr
    assert not any(call.startswith("apply") for call in calls), calls


def test_a_failed_first_deployment_is_scaled_to_zero(deploy):
    result, calls = deploy(available="", rollout_rc=1)
    assert result.returncode == 1
    assert "Nothing to roll back to" in result.stdout and "scaling it to 0" in result.stdout, result.stdout
    assert f"-n {SLUG}-staging scale deployment/{SLUG} --replicas=0" in calls, calls
    assert not any("rollout undo" in call for call in calls), calls


def test_a_failed_smoke_test_of_a_first_deployment_is_scaled_to_zero(deploy):
    result, calls = deploy(available="", curl_rc=22)
    assert result.returncode == 1 and "smoke test" in result.stdout, result.stdout
    assert f"-n {SLUG}-staging scale deployment/{SLUG} --replicas=0" in calls, calls


def test_a_failed_update_of_a_serving_deployment_is_rolled_back(deploy):
    result, calls = deploy(available="2", rollout_rc=1)
    assert result.returncode == 1 and "rolling deployment" in result.stdout, result.stdout
    assert f"-n {SLUG}-staging rollout undo deployment/{SLUG}" in calls, calls
    assert not any(" scale " in call for call in calls), calls


def test_a_good_deployment_is_left_serving(deploy):
    result, calls = deploy(available="1")
    assert result.returncode == 0 and "is serving" in result.stdout, result.stdout + result.stderr
    assert any(call.startswith("apply -k") for call in calls), calls
    assert not any(" scale " in call or "rollout undo" in call for call in calls), calls
