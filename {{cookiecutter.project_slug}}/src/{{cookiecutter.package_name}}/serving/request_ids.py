"""Request ids: the client's `X-Request-ID` when it is a usable one, else a new random one.

The id is returned on every /predict answer and keys the request's rows in the prediction log, where
/feedback finds them. Generated ids are 128 random bits: nobody can guess another client's id to
label its requests. A client's own id (a tracing id, an order number) must be short and visible ASCII,
because it is echoed in a header and stored.
"""

from __future__ import annotations

import binascii
import os
import re

HEADER = b"x-request-id"
MAX_LENGTH = 128
# Visible ASCII, no spaces or control characters: safe in a header, a log line and a CSV cell.
# (No f-strings here: doubled braces are template syntax in this file's source.)
_REPEAT = "{1," + str(MAX_LENGTH) + "}"
PATTERN = "^[!-~]" + _REPEAT + "$"  # the OpenAPI form
_VALID = re.compile(("[!-~]" + _REPEAT).encode())
_VALID_TEXT = re.compile("[!-~]" + _REPEAT)
RULE = f"1 to {MAX_LENGTH} visible ASCII characters (no spaces)"


def new() -> bytes:
    return binascii.hexlify(os.urandom(16))


def resolve(value: bytes | None) -> tuple[bytes, str | None]:
    """(the id to use, None) or, for an unusable client id, (a new id, what is wrong with it)."""
    if value is None:
        return new(), None
    if _VALID.fullmatch(value):
        return value, None
    shown = value[:40].decode("latin-1")
    return new(), (
        f"X-Request-ID {shown!r}{'...' if len(value) > 40 else ''}: expected {RULE}; "
        "send another or none (the server then makes one)"
    )


def valid(value: object) -> bool:
    return isinstance(value, str) and _VALID_TEXT.fullmatch(value) is not None
