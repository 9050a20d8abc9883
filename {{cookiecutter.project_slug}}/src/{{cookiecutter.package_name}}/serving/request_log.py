"""A sample of /predict requests written to the prediction log, off the request path.

The request handler only decides (one random draw) and appends the raw request and response bodies
to a bounded queue: no decoding, no database, no waiting. One writer thread per worker process wakes
a few times a second, decodes what is queued into rows (inputs by the client's column names, the
predictions exactly as answered) and writes them with one COPY. When the queue is full, or the
database is down, requests are dropped and counted (`prediction_log_dropped_total`), with a warning
at most once a minute: the server keeps answering at the same speed whatever the database does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from . import prediction_log
from .prometheus import Metrics

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2  # seconds between the writer's rounds: rows reach the table within about this
FLUSH_DEADLINE = 5.0  # seconds the writer gets at shutdown to write what is still queued
WARN_EVERY = 60.0  # seconds between two warnings about dropped requests
RETRY_AFTER = (1.0, 30.0)  # seconds before reconnecting after a failure: first, and at most (doubling)
# Why a sampled request was not written, and what to do about it.
HINTS = {
    "queue_full": "Queue full: raise PREDICTION_LOG_QUEUE_BYTES or lower PREDICTION_LOG_SAMPLE.",
    "unavailable": "Database unavailable: check PREDICTION_LOG_URL and that PostgreSQL accepts connections.",
    # Ids are 128 random bits made by the server (request_ids.py): a repeat means rows were put in the
    # table under that id by something else.
    "duplicate_id": "An id already in the table: something other than this server wrote rows under it.",
    "unreadable": "Bodies the writer could not read back into rows: a bug, please report it.",
    "shutdown": "Still queued at shutdown.",
}
DROP_REASONS = tuple(HINTS)

# (request id, request body, response body) as they crossed the wire.
Entry = tuple[bytes, bytes, bytes]
Decoded = tuple[str, list[dict[str, Any]], list[Any], list[list[float]] | None]


def decode(entry: Entry) -> Decoded:
    """One logged request as prediction_log rows: inputs keyed by the client's column names
    (`columns` bodies are turned into rows), predictions and probabilities as the client got them."""
    request_id, body, answer = entry
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:  # the server also accepts what Python's json module writes
        payload = json.loads(body)
    if "records" in payload:
        inputs = payload["records"]
    else:
        columns = payload["columns"]
        inputs = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    response = orjson.loads(answer)
    return request_id.decode("ascii"), inputs, response["predictions"], response.get("probabilities")


class Queue:
    """Bounded by the bytes it holds (a request may be one row or MAX_BATCH_ROWS of them)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: deque[Entry] = deque()
        self.refused = 0  # entries that did not fit since the last take()
        self.lock = threading.Lock()

    def put(self, entry: Entry) -> None:
        """Keep the entry, or refuse it (counted) when it does not fit: never waits for room."""
        size = len(entry[1]) + len(entry[2])
        with self.lock:
            if self.size + size > self.max_bytes:
                self.refused += 1
                return
            self.size += size
            self.entries.append(entry)

    def take(self) -> tuple[list[Entry], int]:
        """Everything queued, oldest first, and how many entries were refused meanwhile."""
        with self.lock:
            entries, refused = list(self.entries), self.refused
            self.entries.clear()
            self.size = self.refused = 0
        return entries, refused


class Sampler:
    """Each call says whether to log this request; `rate` of them, at random (no pattern to game)."""

    def __init__(self, rate: float, draw: Callable[[], float] = random.random) -> None:
        self.rate = rate
        self.draw = draw

    def __call__(self) -> bool:
        return self.rate >= 1.0 or (self.rate > 0.0 and self.draw() < self.rate)


class RequestLog:
    def __init__(
        self,
        url: str,
        sample: float,
        model: prediction_log.Model,
        metrics: Metrics,
        max_queue_bytes: int,
    ) -> None:
        self.url = url
        self.sampled = Sampler(sample)
        self.model = model
        self.queue = Queue(max_queue_bytes)
        self.connection: Any = None  # a psycopg.Connection, used by the writer thread only
        self.written = metrics.log_written
        self.drops = {reason: metrics.log_dropped.labels(reason) for reason in DROP_REASONS}
        self.unreported: dict[str, int] = {}
        self.last_warning = -WARN_EVERY
        self.retry_at = 0.0
        self.retry_after = RETRY_AFTER[0]
        self.reason = ""  # the last database error, for the next warning
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    # --- the request path ---------------------------------------------------------------------

    def offer(self, request_id: bytes, body: bytes, answer: bytes) -> None:
        """Called for every answered /predict (status 200); never blocks, never raises. A request that
        does not fit in the queue is counted by the writer's next round."""
        if self.sampled():
            self.queue.put((request_id, body, answer))

    # --- the writer thread --------------------------------------------------------------------

    def start(self) -> None:
        # A daemon: a database that hangs at shutdown cannot keep the process alive past the deadline.
        self.thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self.thread.start()

    def stop(self, deadline: float = FLUSH_DEADLINE) -> None:
        """Write what is queued, waiting at most `deadline` seconds; what is left is dropped and counted."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(deadline)
            if self.thread.is_alive():
                entries, refused = self.queue.take()
                left = len(entries)
                self._drop("queue_full", refused)
                self._drop("shutdown", left)
                log.warning(
                    "prediction log: the writer did not finish within %g s at shutdown; %d queued requests dropped",
                    deadline,
                    left,
                )
                return
        self._close()

    def _run(self) -> None:
        while not self.stopping.wait(FLUSH_INTERVAL):
            self.flush()
        self.flush()  # what arrived before the server stopped answering

    def flush(self) -> None:
        entries, refused = self.queue.take()
        self._drop("queue_full", refused)
        if entries:
            try:
                self._write(entries)
            except Exception:  # the writer must outlive any one batch
                log.exception("prediction log: %d requests could not be written", len(entries))
                self._drop("unavailable", len(entries))
        self._warn()

    def _write(self, entries: list[Entry]) -> None:
        import psycopg

        requests = []
        for entry in entries:
            try:
                requests.append(decode(entry))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                self._drop("unreadable", 1)
        if not requests:
            return
        connection = self._connection()
        if connection is None:
            self._drop("unavailable", len(requests))
            return
        try:
            prediction_log.write_requests(connection, self.model, "server", requests)
        except psycopg.errors.UniqueViolation:
            # A client reused an id already logged: write the others one by one, drop the repeats.
            self._write_each(connection, requests)
        except psycopg.Error as error:
            self._failed(error)
            self._drop("unavailable", len(requests))
            return
        else:
            self.written.inc(len(requests))
        self.retry_after = RETRY_AFTER[0]

    def _write_each(self, connection: Any, requests: Sequence[Decoded]) -> None:
        import psycopg

        for index, (request_id, inputs, predictions, probabilities) in enumerate(requests):
            try:
                prediction_log.write(connection, self.model, "server", request_id, inputs, predictions, probabilities)
            except psycopg.errors.UniqueViolation:
                self._drop("duplicate_id", 1)
            except psycopg.Error as error:
                self._failed(error)
                self._drop("unavailable", len(requests) - index)
                return
            else:
                self.written.inc()

    def _connection(self) -> Any:
        if self.connection is not None and not self.connection.closed:
            return self.connection
        now = time.monotonic()
        if now < self.retry_at:
            return None
        try:
            self.connection = prediction_log.connect(self.url)
        except Exception as error:  # LogError, or anything psycopg raises while setting up
            self._failed(error)
            return None
        log.info("prediction log: connected; logging %g of /predict requests", self.sampled.rate)
        return self.connection

    def _failed(self, error: Exception) -> None:
        """Close, wait before the next attempt (doubling), and say why in the next warning."""
        self._close()
        self.retry_at = time.monotonic() + self.retry_after
        self.retry_after = min(self.retry_after * 2, RETRY_AFTER[1])
        self.reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

    def _close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail again: it is gone either way
                self.connection.close()
            self.connection = None

    def _drop(self, reason: str, count: int) -> None:
        if count:
            self.drops[reason].inc(count)
            self.unreported[reason] = self.unreported.get(reason, 0) + count

    def _warn(self) -> None:
        """At most one warning a minute, with what was dropped since the last one and why."""
        now = time.monotonic()
        if not self.unreported or now - self.last_warning < WARN_EVERY:
            return
        dropped = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in self.unreported.items())
        hints = [HINTS[reason] for reason in DROP_REASONS if reason in self.unreported]
        cause = f"; last error: {self.reason}" if self.reason and "unavailable" in self.unreported else ""
        log.warning(
            "prediction log: requests not logged (%s)%s; the server keeps answering. %s",
            dropped,
            cause,
            " ".join(hints),
        )
        self.unreported.clear()
        self.last_warning = now
