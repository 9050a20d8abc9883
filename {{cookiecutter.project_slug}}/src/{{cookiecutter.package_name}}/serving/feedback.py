"""POST /feedback: the true labels of a logged request, recorded in the prediction log by request id.

Only from a holder of a FEEDBACK_TOKEN (feedback_auth.py), sent as `Authorization: Bearer <token>`:
checked, with the rate limit, from the headers before the body is read. Body: {"request_id": "...",
"labels": [...]}, the X-Request-ID the server gave the /predict answer and one label per row of that
request, in the order the rows were sent. Each label must be one of the model's classes
(classification) or a finite number (regression), so that `monitor` can compare it with the
prediction; `import-labels` applies the same check (check_label). Answers: 200 with the rows
labelled; 401 without a valid token; 403 when no token is configured (feedback is off); 404 when the
request is not in the log (not sampled, unknown id, or not written yet: the writer lags by well under
a second); 409 when it is labelled already (a label is final); 422 for a bad body or a label count
that is not the request's row count; 429 past the rate limit; 503 when no log is configured or the
database cannot be reached.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
from typing import Any

import orjson

from . import prediction_log, request_ids
from .feedback_auth import MAKE_ONE, RateLimit, Tokens
from .model import Model

log = logging.getLogger(__name__)
NO_LOG = orjson.dumps({"detail": "no prediction log configured: set PREDICTION_LOG_URL to record labels"})
DISABLED = (
    "POST /feedback is off: no FEEDBACK_TOKEN is set. To take labels, set FEEDBACK_TOKEN to a secret of at "
    f"least 32 characters (make one with {MAKE_ONE}) and send it as the header Authorization: Bearer <token>"
)
Header = tuple[bytes, bytes]
Refusal = tuple[int, bytes, Header | None]  # status, JSON, one extra header


def check_label(label: Any, classes: list | None, text: bool = False) -> Any:
    """The label as stored: one of `classes` as the model spells it (1.0 is stored as 1), or a finite
    number when `classes` is None (regression). ValueError says what is wrong. `text`: the label was
    read from a file with no types (CSV), so "1" may stand for 1 and "2.5" for 2.5."""
    if classes is None:
        value = label
        if text and isinstance(label, str):
            try:
                value = float(label)
            except ValueError:
                value = label
        if type(value) in (int, float) and math.isfinite(value):
            return value
        raise ValueError(f"expected a finite number, got {label!r}")
    for known in classes:
        if type(label) is not bool and label == known and isinstance(label, str) == isinstance(known, str):
            return known
        if text and isinstance(label, str) and label.strip() == str(known):
            return known
    raise ValueError(f"{label!r} is not one of the model's classes {classes}")


class Gate:
    """Who may send labels now: a configured token, within its rate (feedback_auth.py)."""

    def __init__(self, tokens: tuple[str, ...], per_minute: int) -> None:
        self.tokens = Tokens(tokens) if tokens else None
        self.limit = RateLimit(per_minute)
        self.per_minute = per_minute

    def admit(self, authorization: bytes | None, client: str) -> str | Refusal:
        """The label source of the request's token, or the refusal (status, JSON, extra header)."""
        if self.tokens is None:
            return 403, _detail(DISABLED), None
        source = self.tokens.source(authorization)
        # Failed attempts count against the client's address, so guessing is as slow as the limit.
        wait = self.limit.wait(source or ("client", client))
        if wait > 0:
            message = (
                f"over FEEDBACK_RATE_PER_MINUTE = {self.per_minute} requests a minute"
                f"{' for this token' if source else ''}; retry in {wait:.1f} s"
            )
            return 429, _detail(message), (b"retry-after", str(math.ceil(wait)).encode())
        if source is None:
            what = "no" if authorization is None else "an unknown"
            return (
                401,
                _detail(
                    f"{what} token: send one of the server's FEEDBACK_TOKEN values as Authorization: Bearer <token>"
                ),
                (b"www-authenticate", b"Bearer"),
            )
        return source


def request_schema(classes: list | None, max_rows: int) -> dict[str, Any]:
    """What `Feedback.parse` accepts, as JSON Schema (the OpenAPI document's FeedbackRequest)."""
    label: dict[str, Any] = (  # check_label's two cases
        {"type": "number", "description": "The true value"}
        if classes is None
        else {"enum": list(classes), "description": "One of the model's classes"}
    )
    return {
        "type": "object",
        "title": "FeedbackRequest",
        "additionalProperties": False,
        "required": ["request_id", "labels"],
        "properties": {
            "request_id": {**request_ids.SCHEMA, "description": "The X-Request-ID of a logged /predict answer"},
            "labels": {
                "type": "array",
                "items": label,
                "minItems": 1,
                "maxItems": max_rows,
                "description": "One true label per row of that request, in the order the rows were sent",
            },
        },
    }


class Feedback:
    def __init__(self, url: str, model: Model, max_rows: int) -> None:
        self.url = url
        self.classes = model.classes if model.classification else None
        self.max_rows = max_rows
        self.connection: Any = None  # one psycopg.Connection, opened on first use, shared under the lock
        self.lock = threading.Lock()

    def record(self, body: bytes, source: str) -> tuple[int, bytes]:
        """(status, JSON) for a /feedback body from `source` (Gate.admit); blocking (database round
        trips): run it in a thread."""
        try:
            request_id, labels = self.parse(body)
        except Problem as problem:
            return problem.status, _detail(problem.message)
        import psycopg

        with self.lock:
            try:
                if self.connection is None or self.connection.closed:
                    self.connection = prediction_log.connect(self.url)
                labelled = prediction_log.add_labels(self.connection, request_id, labels, source)
            except LookupError as error:
                return 404, _detail(f"{error.args[0]}; only logged requests can be labelled")
            except prediction_log.AlreadyLabelled as error:
                return 409, _detail(str(error))
            except ValueError as error:
                return 422, _detail(f"labels: {error}, one per row in the order they were sent")
            except (prediction_log.LogError, psycopg.Error) as error:
                self._close()
                log.warning("feedback: prediction log unavailable: %s", str(error).strip())
                return 503, _detail("the prediction log cannot be reached now; retry later")
        return 200, orjson.dumps({"request_id": request_id, "labelled": labelled})

    def parse(self, body: bytes) -> tuple[str, list[Any]]:
        if not body.strip():
            raise Problem(400, 'empty request body: send {"request_id": "...", "labels": [...]}')
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            try:  # what Python's json module writes (NaN): decoded to be refused by name below
                payload = json.loads(body)
            except (ValueError, RecursionError):
                raise Problem(400, f"malformed JSON: {error}") from None
        if not isinstance(payload, dict) or set(payload) != {"request_id", "labels"}:
            got = f"keys {', '.join(map(repr, payload)) or 'none'}" if isinstance(payload, dict) else "not an object"
            raise Problem(422, f'body: expected an object with "request_id" and "labels" only, got {got}')
        request_id, labels = payload["request_id"], payload["labels"]
        if not request_ids.valid(request_id):
            raise Problem(422, f"request_id: expected the X-Request-ID a /predict answer carried ({request_ids.RULE})")
        if not isinstance(labels, list) or not labels:
            raise Problem(422, "labels: expected a non-empty array, one label per row of the request")
        if len(labels) > self.max_rows:
            raise Problem(422, f"labels: {len(labels)} labels, more than a request can have rows ({self.max_rows})")
        return request_id, [self._label(index, label) for index, label in enumerate(labels)]

    def _label(self, index: int, label: Any) -> Any:
        try:
            return check_label(label, self.classes)
        except ValueError as error:
            raise Problem(422, f"labels[{index}]: {error}") from None

    def _close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close: it is gone either way
                self.connection.close()
            self.connection = None

    def close(self) -> None:
        with self.lock:
            self._close()


class Problem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _detail(message: str) -> bytes:
    return orjson.dumps({"detail": message})
