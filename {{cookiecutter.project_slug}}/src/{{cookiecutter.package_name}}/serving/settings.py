"""Server settings, read from environment variables once at start-up (12-factor, same in a container)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .feedback_auth import parse_tokens

# Request-body bytes allowed per row of MAX_BATCH_ROWS. A row of the bundled data is about 260 bytes
# as {"records": [...]} written by json.dumps, 330 bytes indented: 512 leaves room for longer strings.
# With wide rows (many or long columns), set MAX_BODY_BYTES instead.
BODY_BYTES_PER_ROW = 512
# A batching window longer than this is a mistake: every lone request would wait for it.
MAX_WINDOW_MS = 100


def env_int(env: dict[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={value}: must be at least {minimum}")
    return value


def _float(
    env: dict[str, str], name: str, default: float, expected: str, valid: Callable[[float], bool], bound: str
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected {expected}") from None
    if not valid(value):
        raise ValueError(f"{name}={raw}: must be {bound}")
    return value


def env_seconds(env: dict[str, str], name: str, default: float) -> float:
    expected = "a number of seconds, e.g. 10 or 2.5"
    return _float(env, name, default, expected, lambda value: 0 < value < float("inf"), "a positive number of seconds")


def _fraction(env: dict[str, str], name: str, default: float) -> float:
    expected = "a fraction of requests from 0 to 1, e.g. 0.1"
    return _float(env, name, default, expected, lambda value: 0 <= value <= 1, "from 0 (off) to 1 (every request)")


def env_flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r}: expected true or false")


def _database_url(env: dict[str, str], sample: float) -> str:
    url = env.get("PREDICTION_LOG_URL", "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        scheme = url.split("://", 1)[0] if "://" in url else url[:20]
        raise ValueError(
            f"PREDICTION_LOG_URL: expected a PostgreSQL URL, postgresql://user:password@host:5432/database, "
            f"got one starting {scheme!r}"
        )
    if sample > 0 and not url:
        raise ValueError(
            f"PREDICTION_LOG_SAMPLE={sample:g} but PREDICTION_LOG_URL is not set: set it to the log's "
            "PostgreSQL URL, or the sample to 0 (off)"
        )
    return url


@dataclass(frozen=True)
class Settings:
    model_path: Path = Path("outputs/model.onnx")
    max_batch_rows: int = 10_000
    # Largest request body read; None = max_batch_rows x BODY_BYTES_PER_ROW (5,120,000 bytes for
    # 10,000 rows), so a full batch fits and a body that cannot be a valid batch is refused (413)
    # from its Content-Length, before it is read.
    max_body_bytes: int | None = None
    # Bodies at least this large are parsed in a worker thread (about 0.4 ms per 64 KiB), so other
    # requests, /health included, are answered meanwhile; smaller ones are parsed inline, which is faster.
    offload_body_bytes: int = 64 * 1024
    # One intra-op thread per worker: single rows gain nothing from a thread pool and lose latency to
    # thread wake-ups; scale with WORKERS instead. Raise it for large-batch-only traffic.
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    # Comma-separated onnxruntime providers to try in order; empty = CUDA when available, else CPU.
    providers: tuple[str, ...] = ()
    # Batches at least this large run in a worker thread (onnxruntime releases the GIL), so a big
    # batch does not stall the event loop; smaller ones run inline, which is faster.
    offload_rows: int = 256
    # Dynamic batching (batcher.py): requests with fewer rows than dynamic_batch_rows that arrive
    # together are merged into one onnxruntime call of at most that many rows; 0 = off. A batch waits
    # dynamic_batch_window_ms for more requests after its first; 0 = only for those already received
    # (one event-loop turn). Whole milliseconds: uvloop's timers count nothing finer. Merged calls
    # run on the event loop, so at most offload_rows rows.
    dynamic_batch_rows: int = 64
    dynamic_batch_window_ms: int = 0
    # Slow or idle clients must not hold sockets: a request head (line and headers) must arrive
    # within header_timeout of its first byte (or of connecting), its body within body_timeout of the
    # head, and an idle keep-alive connection is closed after keep_alive_timeout.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    # On SIGTERM, requests still running this long after it are cancelled, so that the shutdown (the
    # prediction log's last writes: up to request_log.FLUSH_DEADLINE, 5 s) ends within Kubernetes'
    # default 30 s grace period instead of being killed by it.
    shutdown_timeout: float = 20.0
    max_header_bytes: int = 16 * 1024
    # Per worker. Beyond it, requests get 503 at once (a load balancer retries elsewhere) instead of
    # queueing behind work one worker cannot do sooner; each connection may buffer max_body_bytes.
    max_connections: int = 128
    # The registered version this file is (the image sets it at build time): the ONNX file cannot
    # carry it, since a version exists only after `register` has checked the file.
    model_version: str = ""
    # The prediction log (prediction_log.py): a PostgreSQL URL (never shown: it may hold a password),
    # and the fraction of /predict requests logged there; 0 = none. With a URL and a FEEDBACK_TOKEN,
    # /feedback takes labels whatever the sample (batch scoring writes to the same table).
    prediction_log_url: str = field(default="", repr=False)
    prediction_log_sample: float = 0.0
    # Bytes of request and response bodies waiting for the log's writer, per worker; past it a sampled
    # request is dropped (and counted) rather than held: the log never slows or grows the server.
    prediction_log_queue_bytes: int = 32 * 1024 * 1024
    # POST /feedback (feedback_auth.py): the tokens it takes labels from (none: it is off, 403), and
    # the requests a minute each token (or client address without one) may send, per worker.
    feedback_tokens: tuple[str, ...] = field(default=(), repr=False)
    feedback_rate_per_minute: int = 600
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    def __post_init__(self) -> None:
        if self.max_body_bytes is None:  # frozen: set the derived default the way dataclasses do
            object.__setattr__(self, "max_body_bytes", self.max_batch_rows * BODY_BYTES_PER_ROW)
        if self.dynamic_batch_window_ms > MAX_WINDOW_MS:
            raise ValueError(
                f"DYNAMIC_BATCH_WINDOW_MS={self.dynamic_batch_window_ms} is over {MAX_WINDOW_MS}: every request "
                "that arrives alone would wait that long; use 0 (merge what is already received) or a few ms"
            )
        if self.dynamic_batch_rows > self.offload_rows:
            raise ValueError(
                f"DYNAMIC_BATCH_ROWS={self.dynamic_batch_rows} is over OFFLOAD_ROWS={self.offload_rows}: merged "
                "batches run on the event loop, which must not hold rows a single request would run in a "
                "thread; lower DYNAMIC_BATCH_ROWS or raise OFFLOAD_ROWS"
            )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        providers = tuple(p.strip() for p in env.get("ORT_PROVIDERS", "").split(",") if p.strip())
        max_body = env.get("MAX_BODY_BYTES", "").strip()
        sample = _fraction(env, "PREDICTION_LOG_SAMPLE", cls.prediction_log_sample)
        return cls(
            model_path=Path(env.get("MODEL_PATH") or cls.model_path),
            max_batch_rows=env_int(env, "MAX_BATCH_ROWS", cls.max_batch_rows, 1),
            max_body_bytes=env_int(env, "MAX_BODY_BYTES", 0, 1024) if max_body else None,
            offload_body_bytes=env_int(env, "OFFLOAD_BODY_BYTES", cls.offload_body_bytes, 1),
            intra_op_threads=env_int(env, "ORT_INTRA_OP_THREADS", cls.intra_op_threads, 0),
            inter_op_threads=env_int(env, "ORT_INTER_OP_THREADS", cls.inter_op_threads, 0),
            providers=providers,
            offload_rows=env_int(env, "OFFLOAD_ROWS", cls.offload_rows, 1),
            dynamic_batch_rows=env_int(env, "DYNAMIC_BATCH_ROWS", cls.dynamic_batch_rows, 0),
            dynamic_batch_window_ms=env_int(env, "DYNAMIC_BATCH_WINDOW_MS", cls.dynamic_batch_window_ms, 0),
            header_timeout=env_seconds(env, "HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=env_seconds(env, "BODY_TIMEOUT", cls.body_timeout),
            keep_alive_timeout=env_seconds(env, "KEEP_ALIVE_TIMEOUT", cls.keep_alive_timeout),
            shutdown_timeout=env_seconds(env, "SHUTDOWN_TIMEOUT", cls.shutdown_timeout),
            max_header_bytes=env_int(env, "MAX_HEADER_BYTES", cls.max_header_bytes, 1024),
            max_connections=env_int(env, "MAX_CONNECTIONS", cls.max_connections, 1),
            model_version=env.get("MODEL_VERSION", "").strip(),
            prediction_log_url=_database_url(env, sample),
            prediction_log_sample=sample,
            prediction_log_queue_bytes=env_int(
                env, "PREDICTION_LOG_QUEUE_BYTES", cls.prediction_log_queue_bytes, 64 * 1024
            ),
            feedback_tokens=parse_tokens(env.get("FEEDBACK_TOKEN", "")),
            feedback_rate_per_minute=env_int(env, "FEEDBACK_RATE_PER_MINUTE", cls.feedback_rate_per_minute, 1),
            host=env.get("HOST") or cls.host,
            port=env_int(env, "PORT", cls.port, 1),
            workers=env_int(env, "WORKERS", cls.workers, 1),
        )
