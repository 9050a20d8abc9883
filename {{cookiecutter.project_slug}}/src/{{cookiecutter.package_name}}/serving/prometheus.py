"""Prometheus metrics (recorded per request by fastlane.FastLane, a plain ASGI middleware)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

# Buckets around the single-row target (< 1 ms) up to large batches.
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Requests per merged call: at most DYNAMIC_BATCH_ROWS, itself at most OFFLOAD_ROWS (256 by default).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The methods of RFC 9110 and PATCH. The HTTP parser passes others through (WebDAV's PROPFIND, or
# any token with h11): they share the label "other", so clients cannot grow the label set.
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))


class Metrics:
    def __init__(self, routes: set[str]):
        # A registry per app (not the global one): several apps in one test process do not collide.
        self.registry = CollectorRegistry()
        self.routes = routes
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to handle the request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "predict_errors_total", "Rejected or failed predictions by reason", ["reason"], registry=self.registry
        )
        self.rows = Counter("predict_rows_total", "Rows predicted", registry=self.registry)
        # Dynamic batching (batcher.py): how many requests each onnxruntime call took. One histogram,
        # observed once per call (a few microseconds each, paid by lone requests too).
        self.batch_requests = Histogram(
            "predict_batch_requests",
            "Requests merged into one onnxruntime call (dynamic batching)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        # The prediction log (request_log.py): sampled requests written, and those dropped by reason.
        self.log_written = Counter(
            "prediction_log_written_total",
            "Sampled /predict requests written to the prediction log",
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "prediction_log_dropped_total",
            "Sampled /predict requests not written to the prediction log, by reason",
            ["reason"],
            registry=self.registry,
        )

    @staticmethod
    def method(method: str) -> str:
        return method if method in KNOWN_METHODS else "other"

    def exposition(self) -> tuple[bytes, str]:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            # Several uvicorn workers: each writes its own files; add them up at scrape time.
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
