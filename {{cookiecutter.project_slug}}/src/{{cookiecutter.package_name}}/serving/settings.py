"""Server settings, read from environment variables once at start-up (12-factor, same in a container)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _int(env: dict[str, str], name: str, default: int, minimum: int) -> int:
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


@dataclass(frozen=True)
class Settings:
    model_path: Path = Path("outputs/model.onnx")
    max_batch_rows: int = 10_000
    # Read no more than this per request (a 10,000-row batch of the bundled data is about 2.5 MB).
    max_body_bytes: int = 64 * 1024 * 1024
    # One intra-op thread per worker: single rows gain nothing from a thread pool and lose latency to
    # thread wake-ups; scale with WORKERS instead. Raise it for large-batch-only traffic.
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    # Comma-separated onnxruntime providers to try in order; empty = CUDA when available, else CPU.
    providers: tuple[str, ...] = ()
    # Batches at least this large run in a worker thread (onnxruntime releases the GIL), so a big
    # batch does not stall the event loop; smaller ones run inline, which is faster.
    offload_rows: int = 256
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        providers = tuple(p.strip() for p in env.get("ORT_PROVIDERS", "").split(",") if p.strip())
        return cls(
            model_path=Path(env.get("MODEL_PATH") or cls.model_path),
            max_batch_rows=_int(env, "MAX_BATCH_ROWS", cls.max_batch_rows, 1),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", cls.max_body_bytes, 1024),
            intra_op_threads=_int(env, "ORT_INTRA_OP_THREADS", cls.intra_op_threads, 0),
            inter_op_threads=_int(env, "ORT_INTER_OP_THREADS", cls.inter_op_threads, 0),
            providers=providers,
            offload_rows=_int(env, "OFFLOAD_ROWS", cls.offload_rows, 1),
            host=env.get("HOST") or cls.host,
            port=_int(env, "PORT", cls.port, 1),
            workers=_int(env, "WORKERS", cls.workers, 1),
        )
