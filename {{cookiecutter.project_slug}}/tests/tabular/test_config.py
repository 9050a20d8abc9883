"""config.yaml's tabular sections as the project reads them: the `privacy` section (README, "Differential
privacy"), refused with the key and the fix when it cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.tabular import config as configuration

from unit_configs import group_config

PROJECT = Path(__file__).resolve().parents[2]


# --- config ----------------------------------------------------------------------------------------


def test_the_shipped_config_has_privacy_off():
    loaded = configuration.load(PROJECT / "config.yaml").privacy
    assert not loaded.enabled and loaded.report_epsilon is None


@pytest.mark.parametrize("framework", ["sklearn", "keras"])
def test_dp_training_on_another_framework_is_refused_naming_the_fix(framework):
    with pytest.raises(ValidationError, match=f"pytorch framework only, not {framework}; set privacy.enabled: false"):
        group_config(framework=framework, enabled=True)
    assert group_config(framework=framework, report_epsilon=1.0).privacy.report_epsilon == 1.0  # every framework


@pytest.mark.parametrize(
    "bad",
    [{"target_epsilon": 0}, {"target_delta": 1.0}, {"max_grad_norm": -1.0}, {"report_epsilon": 0}, {"epsilon": 1}],
)
def test_privacy_settings_out_of_range_or_misspelt_are_refused(bad):
    with pytest.raises(ValidationError):
        group_config(**bad)
