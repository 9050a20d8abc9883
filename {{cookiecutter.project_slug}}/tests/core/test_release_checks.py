"""What CI passes between jobs and what a release may ship: job outputs checked before they reach
$GITHUB_OUTPUT, a registered version's trust tags, and where `image-run` publishes the server."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.ops import container, github_ci, registry

RUN = "0123456789abcdef0123456789abcdef"
DIGEST = "ab" * 32


# --- CI glue: job outputs and what may ship ------------------------------------------------------


def test_checked_outputs_become_lines_in_order():
    assert github_ci.checked({"run_id": RUN, "verdict": "", "onnx_sha256": DIGEST}) == (
        f"run_id={RUN}\nverdict=\nonnx_sha256={DIGEST}\n"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"run": RUN}, "not one of"),
        ({"run_id": RUN + "\nverdict=passed"}, "must match"),
        ({"run_id": RUN.upper()}, "must match"),
        ({"verdict": "maybe"}, "must match"),
        ({"model_version": "0"}, "must match"),
        ({"path": "outputs/model onnx"}, "must match"),
        ({"mode": ""}, "must match"),
    ],
)
def test_checked_refuses_unknown_keys_and_values_of_the_wrong_shape(values, message):
    with pytest.raises(UsageError, match=message):
        github_ci.checked(values)


TRUSTED = {
    "source_ref": registry.PROTECTED_REF,
    "gate.verdict": "passed",
    "export.parity": "passed",
    "onnx.sha256": DIGEST,
}


@pytest.mark.parametrize(
    ("change", "protected_ref", "problem"),
    [
        ({}, registry.PROTECTED_REF, None),
        ({"source_ref": "refs/heads/feature"}, None, None),  # None: the caller compares refs itself
        ({"source_ref": "refs/heads/feature"}, registry.PROTECTED_REF, "registered from refs/heads/feature"),
        ({"source_ref": None}, registry.PROTECTED_REF, "registered from an unknown ref"),
        ({"gate.verdict": "failed"}, None, "gate verdict is failed"),
        ({"gate.verdict": None}, None, "gate verdict is missing"),
        ({"export.parity": "failed"}, None, "ONNX parity check is failed"),
        ({"export.parity": None}, None, "ONNX parity check is missing"),
        ({"onnx.sha256": None}, None, "no ONNX digest"),
        ({"onnx.sha256": DIGEST.upper()}, None, "no ONNX digest"),
        ({"onnx.sha256": DIGEST[:-1]}, None, "no ONNX digest"),
    ],
)
def test_trust_problems(change, protected_ref, problem):
    tags = {key: value for key, value in (TRUSTED | change).items() if value is not None}
    problems = lineage.trust_problems(tags, protected_ref)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_a_run_with_no_tags_has_every_problem():
    assert len(lineage.trust_problems({}, registry.PROTECTED_REF)) == 4


def test_image_run_publishes_on_loopback_unless_told(monkeypatch):
    from {{ cookiecutter.package_name }}.cli import parser

    monkeypatch.delenv("IMAGE_BIND", raising=False)
    args = parser().parse_args(["image-run", "--port", "18080"])
    assert container.published(args.port, args.bind) == {"8000/tcp": ("127.0.0.1", 18080)}
    args = parser().parse_args(["image-run", "--bind", "0.0.0.0"])
    assert container.published(args.port, args.bind)["8000/tcp"][0] == "0.0.0.0"
