"""Deadlines for many in-flight requests, checked by one periodic timer per event loop.

Arming and cancelling a loop timer per request costs 2-5 microseconds, a few per cent of a
single-row prediction; registering here is a dict insert. The price is precision: a deadline fires
up to one tick late, which does not matter for timeouts of seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable


class Deadlines:
    def __init__(self, tick: float):
        self.tick = tick
        self.due: dict[Hashable, tuple[float, Callable[[], None]]] = {}
        self._sweeping: asyncio.AbstractEventLoop | None = None

    def watch(self, key: Hashable, seconds: float, expire: Callable[[], None]) -> None:
        """Call `expire()` once, about `seconds` from now, unless `forget(key)` comes first."""
        loop = asyncio.get_running_loop()
        self.due[key] = (loop.time() + seconds, expire)
        if self._sweeping is not loop:  # first deadline, or a new loop (a test client starts one each)
            self._sweeping = loop
            loop.call_later(self.tick, self._sweep, loop)

    def forget(self, key: Hashable) -> None:
        self.due.pop(key, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        try:
            for key in [key for key, (deadline, _) in self.due.items() if deadline <= now]:
                _, expire = self.due.pop(key)
                expire()
        finally:  # even if one callback raised: the other deadlines still need checking
            if self.due:
                loop.call_later(self.tick, self._sweep, loop)
            else:  # nothing to watch: stop ticking until the next watch()
                self._sweeping = None


def tick_for(timeout: float) -> float:
    """Check often enough that a deadline fires at most a quarter late, and at least once a second."""
    return min(timeout / 4, 1.0)
