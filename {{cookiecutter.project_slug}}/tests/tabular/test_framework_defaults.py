"""A framework's defaults are written once, in its module (PARAMS, TUNE_SPACE): the generated config.yaml shows
them, and a config.yaml that leaves them out gets the same. No run, no model."""

from __future__ import annotations

import yaml

from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular import frameworks


def spaces(settings: configuration.Config) -> dict:
    return {name: param.model_dump(exclude_none=True) for name, param in settings.tune.space.items()}


def test_config_yaml_shows_the_frameworks_own_defaults(workspace):
    written = yaml.safe_load(workspace.config.read_text())
    params, space = frameworks.declared(written["model"]["framework"])
    assert params and space  # every framework a project is generated for declares both
    assert written["model"]["params"] == params
    assert written["tune"]["space"] == space


def test_left_out_they_are_the_frameworks_and_written_empty_the_librarys(workspace):
    shown = configuration.load(workspace.config)
    params, space = frameworks.declared(shown.model.framework)

    def leave_out(settings: dict) -> None:
        del settings["model"]["params"]
        del settings["tune"]["space"]

    workspace.edit_config(leave_out)
    defaulted = configuration.load(workspace.config)
    assert defaulted.model.params == params == shown.model.params
    assert spaces(defaulted) == space == spaces(shown)

    workspace.edit_config(lambda settings: settings["model"].update(params={}))
    assert configuration.load(workspace.config).model.params == {}  # the library's own defaults


def test_an_imported_models_framework_declares_none():
    assert frameworks.declared("onnx") == ({}, {})
