"""uvicorn's HTTP protocols with the limits uvicorn lacks: a deadline and a size cap for request heads,
and liveness outside the connection cap.

uvicorn closes idle keep-alive connections (KEEP_ALIVE_TIMEOUT) and answers 503 past MAX_CONNECTIONS,
but a connection that has not sent a complete request head (request line and headers) is held as
long as the client likes: one that connects and sends nothing, or trickles a header byte at a time.
And httptools, the fast parser, accepts heads of any size (h11 has a cap, which server.py sets).

Here each request head must arrive within HEADER_TIMEOUT (from connecting, for the first request;
from its first byte, for the next ones on a keep-alive connection) and stay under MAX_HEADER_BYTES,
else the client gets 408 or 431 and the connection is closed. The app never sees these requests,
so they are not in the request metrics.

Past MAX_CONNECTIONS uvicorn answers every request 503, /health included: 130 idle sockets (from
any pod that can reach the server) made every liveness probe fail, and the kubelet restart the pod
over and over. GET /health is exempt here: it is answered whatever the number of connections (it
reads no body and costs microseconds), while /ready, /predict and everything else still get 503.

server.py hands uvicorn these classes by import string; every worker process reads the limits from
the same environment variables as its app.

Why a layer of our own, not uvicorn's settings alone: server.limits passes every setting uvicorn has
for this (timeout_keep_alive, limit_concurrency, h11_max_incomplete_event_size,
timeout_graceful_shutdown), and none covers these three. On uvicorn 0.54's own protocols with those
settings (HEADER_TIMEOUT and KEEP_ALIVE_TIMEOUT 1 s, MAX_CONNECTIONS 8), a connection that sent
nothing and one that trickled a header were both still open after 4 s, an unfinished 20 KB head was
held (httptools) or answered 400 "Invalid HTTP request received." (h11), and /health got 503 past
the cap. The layer costs no throughput that could be measured: single-row /predict at 8 connections,
medians of 7 interleaved 6 s runs on 2 busy shared cores (bench/serve.py --protocol stock), 1,628
requests/s here against 1,408 on the stock protocol, 185 against 197 µs of server CPU per request;
other runs put it from 8% below to 16% above, the machine's noise.

What it uses of uvicorn's protocol classes is not public API: `cycle`, `scope`, `transport`, and that
`limit_concurrency` is read once per request after `scope` holds the method and path. An upgrade that
changes them fails tests/tabular/test_serving.py's system tests (head deadline, 431, liveness past the cap).
"""

from __future__ import annotations

import asyncio
import importlib.util
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings

if TYPE_CHECKING:

    class _HTTPProtocol(asyncio.Protocol):
        """What HeadLimits uses of the uvicorn protocol class it is mixed into."""

        transport: asyncio.Transport
        # The h11 or httptools RequestResponseCycle (their two classes differ), None until the first head.
        cycle: Any
        scope: Any  # the request being read (None before the first), set by uvicorn before its cap check

else:
    _HTTPProtocol = object

_IDLE = object()  # no head being received: a request is under way, or none has started
LIVENESS = "/health"  # answered past the connection cap (fastlane.py answers it without the app's routes)


@cache
def _limits() -> tuple[float, int]:
    settings = Settings.from_env()
    return settings.header_timeout, settings.max_header_bytes


class HeadLimits(_HTTPProtocol):
    """Mixed in before a uvicorn HTTP protocol class, whose `cycle` is the request under way:
    a new cycle object means the parser has read a complete head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeout, self._max_bytes = _limits()
        self._head_cycle: object = _IDLE  # the cycle current when this head started
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head()

    # uvicorn reads `limit_concurrency` once per request, after it has put the request's method and
    # path in `self.scope` and before it picks the app or its 503 (h11 and httptools alike): None
    # there means "no cap" for this request only.
    @property
    def limit_concurrency(self) -> int | None:
        scope = self.scope
        if scope is not None and scope.get("path") == LIVENESS and scope.get("method") == "GET":
            return None
        return self._limit_concurrency

    @limit_concurrency.setter
    def limit_concurrency(self, value: int | None) -> None:
        self._limit_concurrency = value

    def data_received(self, data: bytes) -> None:
        if self._head_cycle is _IDLE and (self.cycle is None or self.cycle.response_complete):
            self._start_head()  # the first bytes of the next request on a keep-alive connection
        super().data_received(data)
        if self._head_cycle is _IDLE:
            return
        if self.cycle is not self._head_cycle:  # the head is complete and the request is under way
            self._stop_head()
            return
        # Counted per read while the head is incomplete: a head that completes within one read may
        # pass the cap by up to that read (at most a few hundred KiB), which still bounds it.
        self._head_bytes += len(data)
        if self._head_bytes > self._max_bytes and not self.transport.is_closing():
            self._stop_head()
            self._refuse(
                431, f"request head over {self._max_bytes} bytes (MAX_HEADER_BYTES): send fewer or shorter headers"
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self._head_cycle = self.cycle
        self._head_bytes = 0
        self._head_timer = asyncio.get_running_loop().call_later(self._timeout, self._head_expired)

    def _stop_head(self) -> None:
        self._head_cycle = _IDLE
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_cycle = _IDLE
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:
            self._refuse(408, f"request head not received within {self._timeout:g} s (HEADER_TIMEOUT)")
        else:  # connected (or kept alive) and sent nothing: nobody to answer
            self.transport.close()

    def _refuse(self, status: int, detail: str) -> None:
        body = orjson.dumps({"detail": detail})
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


class GuardedH11(HeadLimits, H11Protocol):
    pass


if importlib.util.find_spec("httptools"):
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpTools(HeadLimits, HttpToolsProtocol):
        pass
