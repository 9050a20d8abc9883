"""Start uvicorn with the settings that make it fast (httptools, uvloop, no access log) and the limits
that keep one client from holding it (timeouts, connection and header caps: see settings.py)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os

from .settings import Settings

APP_FACTORY = f"{__package__}.app:create_app"
# uvicorn's protocols plus a deadline and a size cap for request heads and liveness past the connection cap,
# which no uvicorn setting gives (protocol.py says what its own settings left open, and the cost).
PROTOCOLS = {"httptools": f"{__package__}.protocol:GuardedHttpTools", "h11": f"{__package__}.protocol:GuardedH11"}
OPTIONS = {  # flag -> the environment variable uvicorn's worker processes read it back from
    "model": "MODEL_PATH",
    "host": "HOST",
    "port": "PORT",
    "workers": "WORKERS",
    "max_batch_rows": "MAX_BATCH_ROWS",
    "threads": "ORT_INTRA_OP_THREADS",
    "providers": "ORT_PROVIDERS",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings.from_env()
    parser.add_argument("--model", default=str(defaults.model_path), help="ONNX file ($MODEL_PATH)")
    parser.add_argument("--host", default=defaults.host, help="($HOST; 0.0.0.0 in the container)")
    parser.add_argument("--port", type=int, default=defaults.port, help="($PORT)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="processes ($WORKERS)")
    parser.add_argument("--max-batch-rows", type=int, default=defaults.max_batch_rows, help="($MAX_BATCH_ROWS)")
    parser.add_argument(
        "--threads",
        type=int,
        default=defaults.intra_op_threads,
        help="onnxruntime intra-op threads per worker ($ORT_INTRA_OP_THREADS)",
    )
    parser.add_argument(
        "--providers",
        default=",".join(defaults.providers),
        help="onnxruntime providers in order ($ORT_PROVIDERS; default CUDA if available, CPU)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (slower)")


def run(args: argparse.Namespace) -> None:
    import uvicorn

    # Workers are separate processes that build the app from the environment: pass settings there.
    for option, variable in OPTIONS.items():
        os.environ[variable] = str(getattr(args, option))
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s %(message)s")
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=args.access_log,
        log_level="info",
        http=PROTOCOLS[parser],
        loop=loop,
        **limits(settings),
    )


def limits(settings: Settings) -> dict:
    """The uvicorn options that bound what one client can hold (per worker process)."""
    return {
        "timeout_keep_alive": settings.keep_alive_timeout,  # idle keep-alive connections
        "limit_concurrency": settings.max_connections,  # past it: 503 at once
        "timeout_graceful_shutdown": settings.shutdown_timeout,  # then running requests are cancelled
        "h11_max_incomplete_event_size": settings.max_header_bytes,  # httptools' cap is in protocol.py
        "ws": "none",  # no WebSocket routes: refuse upgrades instead of handing the socket on
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description="Serve the ONNX model over HTTP.")
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


# name -> (help, add_arguments, run): the project CLI's `serve` command.
COMMANDS = {"serve": ("serve outputs/model.onnx over HTTP (FastAPI + onnxruntime)", add_arguments, run)}
