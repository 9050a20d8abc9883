"""Request ids: made by the server, one per /predict request, never taken from the client.

The id is returned on every /predict answer (`X-Request-ID`) and keys the request's rows in the
prediction log, where /feedback finds them. It used to be the client's `X-Request-ID` when it sent
one: then anyone could claim the id another caller would use (its rows were dropped as duplicates and
its labels refused). Now a client's `X-Request-ID` is ignored, and ids are 128 random bits: nobody can
guess or pick another client's id. What /feedback accepts as an id is checked by `valid` (batch
scoring logs ids of its own, `batch-...`).
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
_VALID_TEXT = re.compile("[!-~]" + _REPEAT)
RULE = f"1 to {MAX_LENGTH} visible ASCII characters (no spaces)"
SCHEMA = {"type": "string", "pattern": PATTERN, "maxLength": MAX_LENGTH}  # `valid`, as JSON Schema


def new() -> bytes:
    return binascii.hexlify(os.urandom(16))


def valid(value: object) -> bool:
    return isinstance(value, str) and _VALID_TEXT.fullmatch(value) is not None
