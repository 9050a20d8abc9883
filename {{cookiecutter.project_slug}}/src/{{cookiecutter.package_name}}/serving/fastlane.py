"""The hot routes as plain ASGI, in front of FastAPI.

POST /predict and GET /health are answered here without Starlette's router, Request object and
response classes: at a few hundred microseconds per request that machinery costs more than parsing
and onnxruntime together. Everything else (docs, /metadata, /ready, errors) falls through to
FastAPI, which also documents /predict. Every request is counted and timed for Prometheus here.
"""

from __future__ import annotations

import time

from .metrics import Metrics

JSON_HEADERS = [(b"content-type", b"application/json")]
HEALTH = b'{"status":"ok"}'


class FastLane:
    def __init__(self, app, predict, metrics: Metrics, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.predict = predict  # async (body bytes) -> (status, JSON bytes)
        self.metrics = metrics
        self.timers = {route: metrics.latency.labels(route) for route in (*metrics.routes, "other")}
        self.counters: dict[tuple, object] = {}

    def _count(self, route: str, method: str, status: int) -> None:
        key = (route, method, status)
        counter = self.counters.get(key)
        if counter is None:  # label lookups take a lock: do each once
            counter = self.counters[key] = self.metrics.requests.labels(route, method, str(status))
        counter.inc()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        route = path if path in self.metrics.routes else "other"
        if path == "/predict" and method == "POST":
            chunks, size = [], 0
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                if size > self.max_body_bytes:  # stop reading: a client cannot make us buffer gigabytes
                    break
            if size > self.max_body_bytes:
                status, payload = 413, (b'{"detail":"body: over the limit of %d bytes (MAX_BODY_BYTES); '
                                        b'split the batch"}' % self.max_body_bytes)
            else:
                status, payload = await self.predict(b"".join(chunks))
            await self._respond(send, status, payload)
        elif path == "/health" and method == "GET":
            status = 200
            await self._respond(send, status, HEALTH)
        else:
            status = 500  # what the client gets if the app raises before responding

            async def observe(message):
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, observe)
            finally:
                self.timers[route].observe(time.perf_counter() - started)
                self._count(route, method, status)
            return
        self.timers[route].observe(time.perf_counter() - started)
        self._count(route, method, status)

    @staticmethod
    async def _respond(send, status: int, payload: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
