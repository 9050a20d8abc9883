"""The hot routes as plain ASGI, in front of FastAPI.

POST /predict, POST /feedback and GET /health are answered here without Starlette's router, Request object and
response classes: at a few hundred microseconds per request that machinery costs more than parsing
and onnxruntime together. Everything else (docs, /metadata, /ready, errors) falls through to
FastAPI, which also documents /predict. Every request is counted and timed for Prometheus here.

A /predict body is refused before it is read when its Content-Type is not JSON (415) or its
Content-Length is over MAX_BODY_BYTES (413); a body without a length (chunked) is cut off at the
limit while read; a body still incomplete BODY_TIMEOUT after the headers gets 408. Each refusal
closes the connection, so the server never reads the rest of a body it will not use. /feedback
bodies are read under the same limits, once its token and rate limit are checked from the headers
(feedback.py's Gate): a client without a token cannot make the server read its body.

Every /predict answer carries `X-Request-ID`, an id the server made (request_ids.py: a client's own
is ignored); sampled requests are logged under it (request_log.py).

Why a lane of its own rather than FastAPI routes alone: without it (bench/serve.py --protocol
no-fast-lane: FastAPI's router, and not even the metrics or body limits), single-row /predict at 8
connections served 1,014 requests/s against 1,628 with it (38% fewer; 33% in another run) at 323
against 185 µs of server CPU per request (medians of 7 interleaved runs on 2 shared cores). And
neither uvicorn nor FastAPI has a setting for a body size limit or a body deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import lru_cache

import orjson
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import request_ids
from .prometheus import Metrics

JSON_HEADERS = [(b"content-type", b"application/json")]
CLOSE = (b"connection", b"close")
HEALTH = b'{"status":"ok"}'


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


def _detail(message: str) -> bytes:
    return orjson.dumps({"detail": message})


@lru_cache(maxsize=256)  # clients send a handful of distinct values: parse each once
def content_type_problem(value: bytes | None) -> str | None:
    """None when `value` says JSON (application/json, optionally with charset=utf-8), else what is wrong."""
    if value is None:
        return "no Content-Type header"
    media, *parameters = value.decode("latin-1").split(";")
    if media.strip().lower() != "application/json":
        return f"Content-Type {media.strip()!r} is not JSON"
    for parameter in parameters:
        name, _, charset = parameter.partition("=")
        charset = charset.strip().strip('"')
        if name.strip().lower() == "charset" and charset.lower() not in ("utf-8", "utf8"):
            return f"charset {charset!r} is not UTF-8 (JSON is UTF-8)"
    return None


Headers = Iterable[tuple[bytes, bytes]]


def _has_body(headers: Headers) -> bool:
    return any((name == b"content-length" and value != b"0") or name == b"transfer-encoding" for name, value in headers)


Answer = tuple[int, bytes]  # status, JSON body
Refusal = tuple[int, bytes, tuple[bytes, bytes] | None]  # status, JSON body, one extra header


class FastLane:
    def __init__(
        self,
        app: ASGIApp,
        predict: Callable[[bytes, bytes], Awaitable[Answer]],
        admit_feedback: Callable[[bytes | None, str], str | Refusal],
        feedback: Callable[[bytes, str], Awaitable[Answer]],
        metrics: Metrics,
        max_body_bytes: int,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.predict = predict  # async (body bytes, request id) -> (status, JSON bytes)
        self.admit_feedback = admit_feedback  # (Authorization header, client host) -> label source or refusal
        self.feedback = feedback  # async (body bytes, label source) -> (status, JSON bytes)
        self.metrics = metrics
        self.timers: dict[str, Histogram] = {
            route: metrics.latency.labels(route) for route in (*metrics.routes, "other")
        }
        self.counters: dict[tuple[str, str, int], Counter] = {}

    def _count(self, route: str, method: str, status: int) -> None:
        key = (route, method, status)
        counter = self.counters.get(key)
        if counter is None:  # label lookups take a lock: do each once
            counter = self.counters[key] = self.metrics.requests.labels(route, method, str(status))
        counter.inc()

    def _record(self, route: str, method: str, status: int, started: float) -> None:
        self.timers[route].observe(time.perf_counter() - started)
        self._count(route, self.metrics.method(method), status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        route = path if path in self.metrics.routes else "other"  # scanners cannot grow the label set
        if path == "/predict" and method == "POST":
            status = await self._predict(scope, receive, send)
            if status is not None:  # None: the client left before sending its body
                self._record(route, method, status, started)
        elif path == "/feedback" and method == "POST":
            status = await self._feedback(scope, receive, send)
            if status is not None:
                self._record(route, method, status, started)
        elif path == "/health" and method == "GET":
            await self._respond(send, 200, HEALTH)
            self._record(route, method, 200, started)
        else:
            status = 500  # what the client gets if the app raises before responding
            try:
                status = await self._forward(scope, receive, send)
            finally:
                self._record(route, method, status, started)

    async def _predict(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        tagged = (request_ids.HEADER, request_ids.new())
        refusal = self._refusal(scope["headers"])
        if refusal is None:
            body = await self._body(receive)
            if body is None:
                return None
            if isinstance(body, bytes):
                status, payload = await self.predict(body, tagged[1])
                await self._respond(send, status, payload, tagged)
                return status
            refusal = body
        status, payload = refusal
        await self._respond(send, status, payload, tagged, close=True)
        return status

    async def _feedback(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        authorization = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        client = scope.get("client")
        admitted = self.admit_feedback(authorization, client[0] if client else "")
        if not isinstance(admitted, str):
            status, payload, header = admitted
            await self._respond(send, status, payload, header, close=_has_body(scope["headers"]))
            return status
        refusal = self._refusal(scope["headers"])
        if refusal is None:
            body = await self._body(receive)
            if body is None:
                return None
            if isinstance(body, bytes):
                status, payload = await self.feedback(body, admitted)
                await self._respond(send, status, payload)
                return status
            refusal = body
        status, payload = refusal
        await self._respond(send, status, payload, close=True)
        return status

    def _refusal(self, headers: Headers) -> Answer | None:
        """(status, JSON) when the headers alone show the body cannot be used, else None."""
        content_type: bytes | None = None
        length: bytes | None = None
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
        problem = content_type_problem(content_type)
        if problem is not None:
            return 415, _detail(f"{problem}: send the body as JSON with the header Content-Type: application/json")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return 413, _detail(
                f"body: Content-Length {int(length)} is over the limit of {self.max_body_bytes} "
                "bytes (MAX_BODY_BYTES); split the batch"
            )
        return None

    async def _body(self, receive: Receive) -> bytes | Answer | None:
        """The body; or the refusal (status, JSON) when it is too large or too slow; or None when the
        client left."""
        try:
            return await self._read_body(receive)
        except BodyTooLarge:
            return 413, _detail(
                f"body: over the limit of {self.max_body_bytes} bytes (MAX_BODY_BYTES); split the batch"
            )
        except BodyTimeout:
            return 408, _detail(
                f"body: not received within {self.body_timeout:g} s of the headers "
                "(BODY_TIMEOUT); send the whole body at once"
            )

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None if the client disconnected. Raises BodyTooLarge as soon as it passes
        max_body_bytes, BodyTimeout when it is still incomplete body_timeout after the headers."""
        chunks: list[bytes] = []
        size, more = 0, True
        try:
            async with asyncio.timeout(self.body_timeout):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:  # stop reading: a client cannot make us buffer gigabytes
                        raise BodyTooLarge
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:  # only this deadline's: a cancellation (shutdown, disconnect) propagates as such
            raise BodyTimeout from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Hand the request to FastAPI; returns the status it answered with."""
        status = 500
        unread = _has_body(scope["headers"])

        async def receive_tracked() -> Message:
            nonlocal unread
            message = await receive()
            unread = unread and message.get("more_body", False)
            return message

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if unread:
                    # A route answered (404, 405...) without reading the body: close the connection
                    # after the response rather than receive the rest only to throw it away.
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        await self.app(scope, receive_tracked if unread else receive, observe)
        return status

    @staticmethod
    async def _respond(
        send: Send, status: int, payload: bytes, extra: tuple[bytes, bytes] | None = None, close: bool = False
    ) -> None:
        headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        if extra is not None:
            headers.append(extra)
        if close:
            headers.append(CLOSE)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
