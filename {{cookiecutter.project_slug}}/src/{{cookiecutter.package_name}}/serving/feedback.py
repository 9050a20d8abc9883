"""POST /feedback: the true labels of a logged request, recorded in the prediction log by request id.

Body: {"request_id": "...", "labels": [...]}, one label per row of that request, in the order the rows
were sent. Each label must be one of the model's classes (classification) or a finite number
(regression), so that `monitor` can compare it with the prediction. Answers: 200 with the rows
labelled; 404 when the request is not in the log (not sampled, unknown id, or not written yet: the
writer lags by well under a second); 422 for a bad body or a label count that is not the request's
row count; 503 when no log is configured or the database cannot be reached.
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
from .model import Model

log = logging.getLogger(__name__)
NO_LOG = orjson.dumps({"detail": "no prediction log configured: set PREDICTION_LOG_URL to record labels"})


class Feedback:
    def __init__(self, url: str, model: Model, max_rows: int) -> None:
        self.url = url
        self.classes = model.classes if model.classification else None
        self.max_rows = max_rows
        self.connection: Any = None  # one psycopg.Connection, opened on first use, shared under the lock
        self.lock = threading.Lock()

    def record(self, body: bytes) -> tuple[int, bytes]:
        """(status, JSON) for a /feedback body; blocking (database round trips): run it in a thread."""
        try:
            request_id, labels = self.parse(body)
        except Problem as problem:
            return problem.status, _detail(problem.message)
        import psycopg

        with self.lock:
            try:
                if self.connection is None or self.connection.closed:
                    self.connection = prediction_log.connect(self.url)
                labelled = prediction_log.add_labels(self.connection, request_id, labels)
            except LookupError as error:
                return 404, _detail(f"{error.args[0]}; only logged requests can be labelled")
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
        if self.classes is None:
            if type(label) in (int, float) and math.isfinite(label):
                return label
            raise Problem(422, f"labels[{index}]: expected a finite number, got {label!r}")
        for known in self.classes:  # the class as the model spells it: 1.0 is stored as 1
            if type(label) is not bool and label == known and isinstance(label, str) == isinstance(known, str):
                return known
        raise Problem(422, f"labels[{index}]: {label!r} is not one of the model's classes {self.classes}")

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
