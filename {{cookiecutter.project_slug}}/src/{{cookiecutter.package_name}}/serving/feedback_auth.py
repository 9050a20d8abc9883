"""Who may send labels to POST /feedback, and how often.

Labels decide what `monitor` reports (and, through it, retraining), so /feedback takes them only
from holders of a token: FEEDBACK_TOKEN, sent as `Authorization: Bearer <token>`. Several tokens,
comma-separated, let one be replaced without downtime. Without one, /feedback is off (403). Each
token (and each client address that fails to give one) gets FEEDBACK_RATE_PER_MINUTE requests a
minute per worker, in bursts of up to a tenth of that; past it, 429 with Retry-After.

A label records which token sent it, by fingerprint (`feedback:<fingerprint>`, never the token), so
the labels of a token that leaked can be found and removed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Hashable

MIN_TOKEN_LENGTH = 32
MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# Buckets kept per worker: past it, the full ones (clients idle for a while) are forgotten.
MAX_BUCKETS = 4096


def fingerprint(token: str) -> str:
    """What a label records of the token that sent it: 12 hex digits of its SHA-256, not the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def parse_tokens(raw: str) -> tuple[str, ...]:
    """FEEDBACK_TOKEN's tokens; ValueError for one too short to be a secret."""
    tokens = tuple(token.strip() for token in raw.split(",") if token.strip())
    for index, token in enumerate(tokens):
        if len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or " " in token:
            raise ValueError(
                f"FEEDBACK_TOKEN: token {index + 1} has {len(token)} characters (or spaces); each must be at least "
                f"{MIN_TOKEN_LENGTH} printable characters without spaces: make one with {MAKE_ONE}"
            )
    return tokens


class Tokens:
    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = [(token.encode(), f"feedback:{fingerprint(token)}") for token in tokens]

    def source(self, authorization: bytes | None) -> str | None:
        """The label source of the token in an Authorization header, or None when it holds none of ours."""
        if authorization is None:
            return None
        scheme, _, given = authorization.partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        given = given.strip()
        found = None
        for token, source in self.tokens:  # every token compared, in constant time: no early exit to time
            if hmac.compare_digest(given, token):
                found = source
        return found


class RateLimit:
    """A token bucket per key: `per_minute` requests a minute, `burst` at once."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, per_minute / 10)
        self.clock = clock
        self.buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens left, when counted)

    def wait(self, key: Hashable) -> float:
        """0 when the request may go (and it is counted), else the seconds until it could."""
        now = self.clock()
        left, then = self.buckets.get(key, (self.burst, now))
        left = min(self.burst, left + (now - then) * self.rate)
        if left < 1.0:
            self.buckets[key] = (left, now)
            return (1.0 - left) / self.rate
        if len(self.buckets) >= MAX_BUCKETS and key not in self.buckets:
            self._forget_idle(now)
        self.buckets[key] = (left - 1.0, now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        full = [k for k, (left, then) in self.buckets.items() if left + (now - then) * self.rate >= self.burst]
        for key in full:
            del self.buckets[key]
        if len(self.buckets) >= MAX_BUCKETS:  # thousands of clients at once: keep the most recent half
            recent = sorted(self.buckets.items(), key=lambda item: item[1][1])[MAX_BUCKETS // 2 :]
            self.buckets = dict(recent)
