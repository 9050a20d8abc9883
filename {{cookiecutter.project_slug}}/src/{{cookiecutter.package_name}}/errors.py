"""The two ways a stage ends early, so the CLI can map them to exit codes and plain messages."""


class UsageError(Exception):
    """Bad configuration, arguments or input: the user must change something (exit code 2)."""


class CheckFailed(Exception):
    """A stage ran and its check said no: validation, gate or ONNX parity (exit code 1)."""


class UntrustedModel(CheckFailed):
    """A model file from the tracking server is not what train writes: refused, and nothing in it was run."""
