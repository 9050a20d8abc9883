"""Routes: /health, /ready, /predict, /feedback, /metadata, /metrics (and a family's own: extensions.py).

Start with `python -m <package>.serving` (or the CLI's `serve`); uvicorn calls `create_app()`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from . import extensions, prediction_log, request_ids
from .batcher import Batcher
from .fastlane import FastLane
from .feedback import NO_LOG, Feedback, Gate, Refusal
from .inputs import InputError, Plan, parse, rows_of
from .model import Model, load, warm_up
from .openapi import feedback_schemas, predict_components, predict_operation
from .prometheus import Metrics
from .request_log import RequestLog
from .settings import Settings

log = logging.getLogger(__name__)

JSON = "application/json"
ROUTES = {"/health", "/ready", "/predict", "/feedback", "/metadata", "/metrics", "/docs", "/openapi.json"}
OK = orjson.dumps({"status": "ok"})
NOT_READY = orjson.dumps({"detail": "not ready: the model is loading or warming up"})
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class Predictor:
    """A /predict body in, (status, JSON) out: parsing, the model, and what is counted on the way.

    Shared by the documented route and the fast lane (fastlane.py), which answers most requests.
    """

    def __init__(self, model: Model, settings: Settings, metrics: Metrics):
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.invalid = metrics.errors.labels("invalid_input")
        self.ready = False
        self.plan: Plan | None = None
        self.log: RequestLog | None = None
        if settings.prediction_log_sample > 0:
            described = model.describe()
            self.log = RequestLog(
                settings.prediction_log_url,
                settings.prediction_log_sample,
                prediction_log.Model(described["model_name"], described["model_version"], described["run_id"]),
                metrics,
                settings.prediction_log_queue_bytes,
            )
        self.feedback = (
            Feedback(settings.prediction_log_url, model, settings.max_batch_rows)
            if settings.prediction_log_url
            else None
        )
        self.feedback_gate = Gate(settings.feedback_tokens, settings.feedback_rate_per_minute)
        # Requests of batch_rows rows or more are a batch already: they run alone, as without batching.
        self.batch_rows = settings.dynamic_batch_rows
        self.batcher = (
            Batcher(model.infer, self.batch_rows, settings.dynamic_batch_window_ms / 1000, metrics.batch_requests)
            if self.batch_rows > 1  # 0 is off; with 1 no two requests fit in one call
            else None
        )

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Warm up before reporting ready."""
        warm_up(self.model)
        # Built after the probe: it may have marked columns whose unseen categories the model refuses.
        self.plan = Plan(tuple(self.model.features), self.settings.max_batch_rows)
        self.ready = True
        # Everything allocated so far lives as long as the process: keep the collector off it, so
        # collections during requests are short (fewer latency spikes).
        gc.collect()
        gc.freeze()
        if self.log is not None:  # here, not in __init__: each worker process needs its own thread
            self.log.start()
        if self.feedback is not None and self.feedback_gate.tokens is None:
            log.warning(
                "POST /feedback is off (403): no FEEDBACK_TOKEN is set. To take labels, set FEEDBACK_TOKEN to a "
                "secret of at least 32 characters and give it to the clients that send labels"
            )
        log.info("ready: %s", self.model.path)
        yield
        self.ready = False
        if self.log is not None:  # after the last request: write what is queued, within a deadline
            await run_in_threadpool(self.log.stop)
        if self.feedback is not None:
            self.feedback.close()

    async def predict(self, body: bytes, request_id: bytes) -> tuple[int, bytes]:
        status, payload = await self._predict(body)
        if status == 200 and self.log is not None:
            self.log.offer(request_id, body, payload)
        return status, payload

    def admit_feedback(self, authorization: bytes | None, client: str) -> str | Refusal:
        """The label source of an authorised /feedback request (its token), or the refusal."""
        admitted = self.feedback_gate.admit(authorization, client)
        if isinstance(admitted, str) and self.feedback is None:
            return 503, NO_LOG, None
        return admitted

    async def record_feedback(self, body: bytes, source: str) -> tuple[int, bytes]:
        if self.feedback is None:
            return 503, NO_LOG
        return await run_in_threadpool(self.feedback.record, body, source)

    async def _predict(self, body: bytes) -> tuple[int, bytes]:
        if not self.ready:
            return 503, NOT_READY
        if len(body) >= self.settings.offload_body_bytes:
            # Decoding megabytes takes milliseconds to tens of them: in a worker thread (with the
            # prediction, one hand-off rather than two) the event loop keeps answering meanwhile.
            return await run_in_threadpool(self.predict_now, body)
        feeds = self.checked(body)
        if isinstance(feeds, tuple):
            return feeds
        rows = rows_of(feeds)
        if rows >= self.settings.offload_rows:  # onnxruntime releases the GIL: run it in a thread
            return await run_in_threadpool(self.run, feeds)
        if self.batcher is not None and rows < self.batch_rows:
            return await self.run_batched(feeds, rows)
        return self.run(feeds)

    def predict_now(self, body: bytes) -> tuple[int, bytes]:
        feeds = self.checked(body)
        return feeds if isinstance(feeds, tuple) else self.run(feeds)

    def checked(self, body: bytes) -> dict | tuple[int, bytes]:
        """The model's inputs from a /predict body, or (status, JSON) saying what is wrong with it."""
        assert self.plan is not None  # set in lifespan() before `ready`, which predict() checks first
        try:
            return parse(body, self.plan)
        except InputError as error:
            self.invalid.inc()
            return error.status, orjson.dumps({"detail": error.message})

    def run(self, feeds: dict) -> tuple[int, bytes]:
        rows = rows_of(feeds)
        try:
            outputs = self.model.infer(feeds)
        except Exception as error:
            return self._failed(error, rows)
        return self._answer(outputs, rows)

    async def run_batched(self, feeds: dict, rows: int) -> tuple[int, bytes]:
        """`run`, with the rows merged into one onnxruntime call with other requests' (batcher.py)."""
        assert self.batcher is not None  # _predict sends requests here only when batching is on
        try:
            outputs = await self.batcher.run(feeds, rows)
        except Exception as error:
            return self._failed(error, rows)
        return self._answer(outputs, rows)

    def _answer(self, outputs: list, rows: int) -> tuple[int, bytes]:
        self.metrics.rows.inc(rows)
        return 200, orjson.dumps(self.model.answer(outputs), option=_NUMPY)

    def _failed(self, error: Exception, rows: int) -> tuple[int, bytes]:
        # Values that pass the checks but that onnxruntime cannot take (e.g. lone surrogates), or
        # onnxruntime's own input errors: the client's to fix.
        if isinstance(error, (UnicodeEncodeError, ValueError)) or type(error).__name__ in ("InvalidArgument", "Fail"):
            return self._rejected(error)
        self.metrics.errors.labels("model_failed").inc()
        log.error("prediction failed for %d rows", rows, exc_info=error)
        return 500, orjson.dumps({"detail": "prediction failed; see the server log"})

    def _rejected(self, error: Exception) -> tuple[int, bytes]:
        self.metrics.errors.labels("model_rejected").inc()
        return 422, orjson.dumps({"detail": f"the model could not use this input: {error}"})


# --- routes: each reads what it serves from app.state --------------------------------------------


async def health() -> Response:
    return Response(OK, media_type=JSON)


async def ready(request: Request) -> Response:
    if request.app.state.predictor.ready:
        return Response(OK, media_type=JSON)
    return Response(NOT_READY, status_code=503, media_type=JSON)


async def metadata(request: Request) -> Response:
    return Response(orjson.dumps(request.app.state.predictor.model.describe(), option=_NUMPY), media_type=JSON)


async def prometheus(request: Request) -> Response:
    payload, content_type = request.app.state.predictor.metrics.exposition()
    return Response(payload, media_type=content_type)


async def predict(request: Request) -> Response:
    # Documents the operation; requests normally take the fast lane (FastLane) and never get here.
    request_id = request_ids.new()
    status, payload = await request.app.state.predictor.predict(await request.body(), request_id)
    return Response(payload, status_code=status, media_type=JSON, headers={"X-Request-ID": request_id.decode()})


async def feedback(request: Request) -> Response:
    # Documents the operation; the fast lane answers it, with the same checks and body limits.
    predictor = request.app.state.predictor
    authorization = request.headers.get("authorization")
    admitted = predictor.admit_feedback(
        None if authorization is None else authorization.encode("latin-1"),
        request.client.host if request.client else "",
    )
    if not isinstance(admitted, str):
        status, payload, header = admitted
        headers = {header[0].decode(): header[1].decode()} if header else None
        return Response(payload, status_code=status, media_type=JSON, headers=headers)
    status, payload = await predictor.record_feedback(await request.body(), admitted)
    return Response(payload, status_code=status, media_type=JSON)


def add_routes(app: FastAPI, predict_operation: dict, feedback_operation: dict, log_configured: bool) -> None:
    app.add_api_route("/health", health, methods=["GET"], summary="Liveness: the process answers")
    app.add_api_route(
        "/ready",
        ready,
        methods=["GET"],
        summary="Readiness: model loaded and a warm-up prediction passed",
        responses={503: {"description": "Not ready yet"}},
    )
    app.add_api_route(
        "/metadata", metadata, methods=["GET"], summary="What model is served: lineage, input schema, task and classes"
    )
    app.add_api_route("/metrics", prometheus, methods=["GET"], summary="Prometheus metrics", include_in_schema=False)
    app.add_api_route("/predict", predict, methods=["POST"], summary="Predict rows", openapi_extra=predict_operation)
    # Documented only where it can work: without a log (503) or a token (403) it refuses whatever is sent.
    app.add_api_route(
        "/feedback",
        feedback,
        methods=["POST"],
        summary="Record the true labels of a logged /predict request",
        openapi_extra=feedback_operation,
        include_in_schema=log_configured,
    )


def add_openapi(app: FastAPI, predictor: Predictor, components: dict) -> None:
    """The generated document plus the schemas of /predict (its request described by the plan that
    checks requests) and `components` (those of the other routes)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        model = predictor.model
        # Before the warm-up's probe (Predictor.lifespan) the plan does not know which categories the
        # model refuses: describe the columns as loaded, and build the document again once it does.
        plan = predictor.plan or Plan(tuple(model.features), predictor.settings.max_batch_rows)
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(predict_components(plan, model) | components)
        if predictor.plan is not None:
            app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """Load the model (the OpenAPI schema is built from it); the app warms it up before reporting ready."""
    settings = settings or Settings.from_env()
    model = load(settings)
    # A family's own routes, those its settings turn on (tabular: /encrypted with ENCRYPTED_INFERENCE=true).
    added = extensions.load(model, settings)
    metrics = Metrics(ROUTES.union(*(extension.routes for extension in added)))
    predictor = Predictor(model, settings, metrics)
    description = model.describe()
    app = FastAPI(
        title=f"{description['model_name'] or 'model'} inference",
        version=description["model_version"] or "unversioned",
        lifespan=predictor.lifespan,
        description=f"{model.task} model from run {description['run_id'] or 'unknown'}; "
        "POST /predict with rows or columns.",
    )
    feedback_components, feedback_operation = feedback_schemas(model, settings.max_batch_rows)
    feedback_on = bool(settings.prediction_log_url and settings.feedback_tokens)
    add_routes(app, predict_operation(model), feedback_operation, feedback_on)
    for extension in added:
        extension.add_routes(app)
    add_openapi(app, predictor, feedback_components if feedback_on else {})
    app.state.model = model
    app.state.predictor = predictor
    assert settings.max_body_bytes is not None  # Settings.__post_init__ derives it when unset
    # Outermost: metrics for every request, and the hot routes served without the router.
    app.add_middleware(
        FastLane,
        predict=predictor.predict,
        admit_feedback=predictor.admit_feedback,
        feedback=predictor.record_feedback,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
    )
    return app
