"""Routes: /health, /ready, /predict, /metadata, /metrics.

Start with `python -m <package>.serving` (or the CLI's `serve`); uvicorn calls `create_app()`.
"""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from . import model as onnx_model
from .fastlane import FastLane
from .inputs import InputError, Plan, parse, rows_of
from .metrics import Metrics
from .openapi import schemas
from .settings import Settings

log = logging.getLogger(__name__)

JSON = "application/json"
ROUTES = {"/health", "/ready", "/predict", "/metadata", "/metrics", "/docs", "/openapi.json"}
OK = orjson.dumps({"status": "ok"})
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _json(content, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=_NUMPY), status_code=status, media_type=JSON)


class State:
    def __init__(self) -> None:
        self.ready = False
        self.plan: Plan | None = None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Load the model (the OpenAPI schema is built from it), then warm up before reporting ready."""
    settings = settings or Settings.from_env()
    model = onnx_model.load(settings)
    state = State()
    metrics = Metrics(ROUTES)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        onnx_model.warm_up(model)
        # Built after the probe: it may have marked columns whose unseen categories the model refuses.
        state.plan = Plan(tuple(model.features), settings.max_batch_rows)
        state.ready = True
        # Everything allocated so far lives as long as the process: keep the collector off it, so
        # collections during requests are short (fewer latency spikes).
        gc.collect()
        gc.freeze()
        log.info("ready: %s", model.path)
        yield
        state.ready = False

    description = model.describe()
    app = FastAPI(title=f"{description['model_name'] or 'model'} inference",
                  version=description["model_version"] or "unversioned", lifespan=lifespan,
                  description=f"{model.task} model from run {description['run_id'] or 'unknown'}; "
                              "POST /predict with rows or columns.")
    state.plan = Plan(tuple(model.features), settings.max_batch_rows)

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> Response:
        return Response(OK, media_type=JSON)

    @app.get("/ready", summary="Readiness: model loaded and a warm-up prediction passed",
             responses={503: {"description": "Not ready yet"} })
    async def ready() -> Response:
        if state.ready:
            return Response(OK, media_type=JSON)
        return _json({"detail": "not ready: the model is loading or warming up"}, 503)

    @app.get("/metadata", summary="What model is served: lineage, input schema, task and classes")
    async def metadata() -> Response:
        return _json(model.describe())

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        payload, content_type = metrics.exposition()
        return Response(payload, media_type=content_type)

    components, operation = schemas(model, settings.max_batch_rows)

    def checked(body: bytes) -> dict | tuple[int, bytes]:
        """The model's inputs from a /predict body, or (status, JSON) saying what is wrong with it."""
        try:
            return parse(body, state.plan)
        except InputError as error:
            errors_invalid.inc()
            return error.status, orjson.dumps({"detail": error.message})

    def run(feeds: dict) -> tuple[int, bytes]:
        rows = rows_of(feeds)
        try:
            result = model.run(feeds)
        except (UnicodeEncodeError, ValueError) as error:
            # Values that pass the checks but that onnxruntime cannot take (e.g. lone surrogates).
            metrics.errors.labels("model_rejected").inc()
            return 422, orjson.dumps({"detail": f"the model could not use this input: {error}"})
        except Exception as error:
            if type(error).__name__ in ("InvalidArgument", "Fail"):  # onnxruntime's input errors
                metrics.errors.labels("model_rejected").inc()
                return 422, orjson.dumps({"detail": f"the model could not use this input: {error}"})
            metrics.errors.labels("model_failed").inc()
            log.exception("prediction failed for %d rows", rows)
            return 500, orjson.dumps({"detail": "prediction failed; see the server log"})
        metrics.rows.inc(rows)
        return 200, orjson.dumps(result, option=_NUMPY)

    def predict_now(body: bytes) -> tuple[int, bytes]:
        feeds = checked(body)
        return feeds if isinstance(feeds, tuple) else run(feeds)

    async def predict_body(body: bytes) -> tuple[int, bytes]:
        """(status, JSON) for a /predict body; shared by the documented route and the fast lane."""
        if not state.ready:
            return 503, orjson.dumps({"detail": "not ready: the model is loading or warming up"})
        if len(body) >= settings.offload_body_bytes:
            # Decoding megabytes takes milliseconds to tens of them: in a worker thread (with the
            # prediction, one hand-off rather than two) the event loop keeps answering meanwhile.
            return await run_in_threadpool(predict_now, body)
        feeds = checked(body)
        if isinstance(feeds, tuple):
            return feeds
        if rows_of(feeds) >= settings.offload_rows:  # onnxruntime releases the GIL: run it in a thread
            return await run_in_threadpool(run, feeds)
        return run(feeds)

    errors_invalid = metrics.errors.labels("invalid_input")

    @app.post("/predict", summary="Predict rows", openapi_extra=operation)
    async def predict(request: Request) -> Response:
        # Documents the operation; requests normally take the fast lane (FastLane) and never get here.
        status, payload = await predict_body(await request.body())
        return Response(payload, status_code=status, media_type=JSON)

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi
    app.state.model = model
    # Outermost: metrics for every request, and the hot routes served without the router.
    app.add_middleware(FastLane, predict=predict_body, metrics=metrics,
                       max_body_bytes=settings.max_body_bytes, body_timeout=settings.body_timeout)
    return app
