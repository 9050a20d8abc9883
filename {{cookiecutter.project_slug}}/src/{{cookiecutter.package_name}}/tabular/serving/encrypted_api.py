"""GET /encrypted and POST /encrypted/predict: present only when ENCRYPTED_INFERENCE is on (EncryptedSettings).

Bodies are large (up to ENCRYPTED_MAX_BODY_BYTES, 64 MB) and scoring takes seconds of CPU, so one
request per worker at a time is admitted, *before* its body is read: the others wait with their
bodies unread (uvicorn stops reading a socket past 64 KiB), so four 62 MB requests hold one body in
memory, not four. A request waits at most ENCRYPTED_BODY_TIMEOUT for its turn (503), and its body
must then arrive within ENCRYPTED_BODY_TIMEOUT (408): a client sending a byte a second holds the
turn that long at most. Refusals close the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ...serving.fastlane import content_type_problem
from ...serving.model import Model, ModelError
from ...serving.settings import Settings, env_flag, env_int, env_seconds
from . import encrypted, linear

JSON = "application/json"
ROUTES = frozenset({"/encrypted", "/encrypted/predict"})
REQUEST_SCHEMA = {
    "type": "object",
    "required": ["context", "transform_sha256", "rows", "packs"],
    "properties": {
        "context": {"type": "string", "description": "public TenSEAL CKKS context, base64 (no secret key)"},
        "transform_sha256": {"type": "string", "description": "GET /encrypted's transform_sha256"},
        "rows": {"type": "integer", "minimum": 1},
        "packs": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "string"}},
            "description": "per pack of up to 4096 rows, one base64 CKKS vector per prepared feature",
        },
    },
}


def _detail(message: str) -> bytes:
    return orjson.dumps({"detail": message})


class TooLarge(Exception):
    pass


@dataclass(frozen=True)
class EncryptedSettings:
    """The endpoint's environment variables, beside the server's own (serving/settings.py)."""

    # POST /encrypted/predict for CKKS-encrypted rows, off by default: it needs a linear model (the server
    # refuses to start otherwise) and TenSEAL. Its bodies are far larger than /predict's (about 0.33 MB
    # of base64 per prepared feature per 4096 rows), so they have their own limit.
    enabled: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    # One encrypted request per worker is read and scored at a time, and its body is read only once
    # it is its turn (so waiting requests hold no body). A request waits at most this long for its
    # turn (else 503), and its body must then arrive within this long (else 408): 64 MB at ~1 MB/s.
    body_timeout: float = 60.0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> EncryptedSettings:
        return cls(
            enabled=env_flag(env, "ENCRYPTED_INFERENCE", cls.enabled),
            max_body_bytes=env_int(env, "ENCRYPTED_MAX_BODY_BYTES", cls.max_body_bytes, 1024 * 1024),
            body_timeout=env_seconds(env, "ENCRYPTED_BODY_TIMEOUT", cls.body_timeout),
        )


def extension(model: Model, settings: Settings, env: dict[str, str]) -> EncryptedEndpoint | None:
    """The endpoint when ENCRYPTED_INFERENCE is on (serving/extensions.py); it refuses a model that is not linear."""
    own = EncryptedSettings.from_env(env)
    return EncryptedEndpoint(model, settings, own) if own.enabled else None


class EncryptedEndpoint:
    routes = ROUTES

    def __init__(self, model: Model, settings: Settings, own: EncryptedSettings):
        try:
            import tenseal  # noqa: F401  # missing: fail at start-up, not on the first request
        except ImportError as error:
            raise ModelError(
                "ENCRYPTED_INFERENCE=true needs TenSEAL: pip install tenseal (the serving image's "
                "docker/requirements-serve.in pins it)"
            ) from error
        self.linear = linear.extract(model)
        self.spec = orjson.dumps(encrypted.spec(self.linear, model.describe(), settings.max_batch_rows))
        self.max_body_bytes = own.max_body_bytes
        self.body_timeout = own.body_timeout
        self.max_rows = settings.max_batch_rows
        # CPU-bound for up to seconds: one at a time per worker, taken before the body is read, so
        # requests queue with their bodies unread instead of each holding one while they wait.
        self.turn = asyncio.Semaphore(1)

    async def describe(self, request: Request) -> Response:
        return Response(self.spec, media_type=JSON)

    async def predict(self, request: Request) -> Response:
        if not request.app.state.predictor.ready:
            return Response(_detail("not ready: the model is loading or warming up"), 503, media_type=JSON)
        problem = content_type_problem(request.headers.get("content-type", "").encode("latin-1") or None)
        if problem is not None:
            message = f"{problem}: send the request file encrypt-request wrote, as JSON"
            return Response(_detail(message), 415, media_type=JSON)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large(f"Content-Length {int(length)}")
        try:
            async with asyncio.timeout(self.body_timeout):
                await self.turn.acquire()
        except TimeoutError:
            message = (
                f"busy: no turn within {self.body_timeout:g} s (ENCRYPTED_BODY_TIMEOUT); encrypted requests are "
                "scored one at a time per worker: retry later"
            )
            return Response(_detail(message), 503, headers={"connection": "close", "retry-after": "5"}, media_type=JSON)
        try:
            try:
                body = await self._read(request)
            except TooLarge:
                return self._too_large("body")
            except TimeoutError:
                message = (
                    f"body: not received within {self.body_timeout:g} s (ENCRYPTED_BODY_TIMEOUT); "
                    "send the whole request at once"
                )
                return Response(_detail(message), 408, headers={"connection": "close"}, media_type=JSON)
            except ClientDisconnect:  # nobody left to answer
                return Response(status_code=499)
            status, payload = await run_in_threadpool(self._score, body)
        finally:
            self.turn.release()
        return Response(payload, status, media_type=JSON)

    def _score(self, body: bytearray) -> tuple[int, bytes]:
        try:
            return 200, encrypted.score(self.linear, body, self.max_rows)
        except encrypted.RequestError as error:
            return error.status, _detail(str(error))

    async def _read(self, request: Request) -> bytearray:
        """The body, in one buffer (orjson reads it as is: no second copy of 64 MB). Raises TooLarge
        past the limit, TimeoutError when it is not all there within body_timeout."""
        body = bytearray()
        async with asyncio.timeout(self.body_timeout):
            async for chunk in request.stream():
                if len(body) + len(chunk) > self.max_body_bytes:  # stop reading: no more is buffered
                    raise TooLarge
                body += chunk
        return body

    def _too_large(self, what: str) -> Response:
        return Response(
            _detail(
                f"{what}: over the limit of {self.max_body_bytes} bytes (ENCRYPTED_MAX_BODY_BYTES); "
                "send fewer rows per request"
            ),
            413,
            headers={"connection": "close"},
            media_type=JSON,
        )

    def add_routes(self, app: FastAPI) -> None:
        app.add_api_route(
            "/encrypted",
            self.describe,
            methods=["GET"],
            summary="What encrypt-request needs: the feature transform, the link and the CKKS parameters",
        )
        app.add_api_route(
            "/encrypted/predict",
            self.predict,
            methods=["POST"],
            summary="Linear scores of CKKS-encrypted rows, encrypted (decrypt-response reads them)",
            openapi_extra={
                "requestBody": {"required": True, "content": {JSON: {"schema": REQUEST_SCHEMA}}},
            },
        )
