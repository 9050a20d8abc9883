"""Dynamic batching: the rows of /predict requests that arrive together, run as one onnxruntime call.

A single-row request spends most of its model time on onnxruntime's fixed per-call cost, so several
requests merged into one call cost little more than one. As in Triton's dynamic batcher, the first
request of a batch opens it; requests that come while it is open join it; it runs when it is full
(`max_rows` rows, or the next request would not fit) or when its window ends. With a window of 0
(the default) it waits for nothing: its first request lets the event loop run once, so that the
requests already received (parsed in that turn) join, then runs. A lone client therefore pays one
event-loop turn, not a delay; under load, the requests that arrive while a batch runs form the next.

Each request is parsed and checked on its own before it joins (a bad body answers only its own
client). When the merged call fails, every request of the batch is run again alone, so that a value
the model cannot take fails only the request that sent it. Each request gets its own rows back.

Batches run on the event loop: `max_rows` is kept at most OFFLOAD_ROWS (settings.py), the size
from which a single request's rows are run in a worker thread instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import Histogram

Feeds = dict[str, np.ndarray]
Outputs = list[np.ndarray]


@dataclass(slots=True)
class _Batch:
    loop: asyncio.AbstractEventLoop
    feeds: list[Feeds] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    waiting: list[asyncio.Future[Outputs]] = field(default_factory=list)
    total: int = 0
    closed: bool = False
    timer: asyncio.TimerHandle | None = None


class Batcher:
    def __init__(
        self,
        infer: Callable[[Feeds], Outputs],
        max_rows: int,
        window: float,
        requests: Histogram,
    ):
        self.infer = infer  # feeds -> outputs, each with one row per input row along the first axis
        self.max_rows = max_rows
        self.window = window  # seconds a batch stays open after its first request; 0: one loop turn
        self.requests = requests  # requests per onnxruntime call
        self.open: _Batch | None = None

    async def run(self, feeds: Feeds, rows: int) -> Outputs:
        """This request's rows of the outputs; raises what the model raised for them. `rows` must be
        under max_rows: a request that large is already a batch, run it alone."""
        loop = asyncio.get_running_loop()
        batch = self.open
        if batch is not None and batch.loop is not loop:  # left by a stopped loop (test clients start one each)
            batch = None
        if batch is not None and batch.total + rows > self.max_rows:
            self._run(batch)  # full for this request: run it now and open the next one
            batch = None
        leader = batch is None
        if batch is None:
            batch = self.open = _Batch(loop)
            if self.window > 0:
                batch.timer = loop.call_later(self.window, self._run, batch)
        waiting: asyncio.Future[Outputs] = loop.create_future()
        batch.feeds.append(feeds)
        batch.rows.append(rows)
        batch.waiting.append(waiting)
        batch.total += rows
        if batch.total >= self.max_rows:
            self._run(batch)
        elif leader and self.window == 0:
            try:
                await asyncio.sleep(0)  # one loop turn: the requests already received join
            finally:  # even when this request is cancelled: the others in the batch wait for it
                self._run(batch)
        return await waiting

    def _run(self, batch: _Batch) -> None:
        if batch.closed:
            return
        batch.closed = True
        if self.open is batch:
            self.open = None
        if batch.timer is not None:
            batch.timer.cancel()
        self.requests.observe(len(batch.waiting))
        if len(batch.feeds) == 1:
            _settle(batch.waiting[0], self.infer, batch.feeds[0])
            return
        try:
            merged = {name: np.concatenate([feeds[name] for feeds in batch.feeds]) for name in batch.feeds[0]}
            outputs = self.infer(merged)
        except Exception:
            # A value onnxruntime cannot take fails the whole call: run each request alone, so that
            # the error reaches only the request that sent it.
            for feeds, waiting in zip(batch.feeds, batch.waiting, strict=True):
                _settle(waiting, self.infer, feeds)
            return
        start = 0
        for rows, waiting in zip(batch.rows, batch.waiting, strict=True):
            if not waiting.done():  # done: its request was cancelled (the server is stopping)
                waiting.set_result([output[start : start + rows] for output in outputs])
            start += rows


def _settle(waiting: asyncio.Future[Outputs], infer: Callable[[Feeds], Outputs], feeds: Feeds) -> None:
    if waiting.done():
        return
    try:
        waiting.set_result(infer(feeds))
    except Exception as error:
        waiting.set_exception(error)
