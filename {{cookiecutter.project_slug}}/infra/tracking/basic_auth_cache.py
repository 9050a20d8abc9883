"""MLflow's basic-auth check, with the credentials it has verified remembered in this process.

The auth config (bootstrap.py auth-config) names `authenticate_request_basic_auth_cached` as
MLflow's `authorization_function`; the image keeps this file in /opt/tracking (Dockerfile), on the
server's PYTHONPATH (compose.yaml).

Why: MLflow checks the password against its stored hash (werkzeug's scrypt, ~0.1 CPU-second, slow
on purpose) on every request, and again each time it needs the user's name while answering one
(the admin check, the permission checks): measured at ~0.4 CPU-second per request, for a training
pipeline that makes hundreds of them. Remembering a credential once verified is what the auth
caches of nginx and Apache do. MLflow's own cache (`auth_cache_ttl_seconds`) stays off: it forgets
a changed password only on the worker that served the change (compose runs four), the others accept
the old one until a TTL expires.

Why it is safe:
- A credential is remembered as a keyed hash (HMAC-SHA256, a random key made at each start and
  kept only in memory) of the user name, the password, and the user's stored password hash and
  admin flag (MLflow refuses an old default password on admins only). Every check reads that row
  again (one small query, no password hashing), so a new password, a deleted user or a changed
  admin flag misses the cache at once, on every worker.
- Only what MLflow's own check accepted is remembered; a refusal is never remembered, so every
  wrong password costs the attacker the full slow hash.
- At most MAX_ENTRIES credentials, the least recently used dropped first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections import OrderedDict

from flask import Response, request
from mlflow.exceptions import MlflowException
from mlflow.server import auth as mlflow_auth
from werkzeug.datastructures import Authorization

# A team's users and CI jobs hold a handful of credentials; room for far more than that, and small
# (one 32-byte digest each), so a flood of new valid logins only pushes out the oldest ones.
MAX_ENTRIES = 1024


class VerifiedCredentials:
    """A bounded, thread-safe set of digests of credentials MLflow accepted (least recently used
    dropped first). The server answers requests on several threads."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._key = secrets.token_bytes(32)  # never stored: a digest is useless without it
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def digest(self, username: str, password: str, password_hash: str, is_admin: bool) -> bytes:
        # JSON keeps the fields apart whatever characters they hold ("a", "bc" vs "ab", "c").
        message = json.dumps([username, password, password_hash, is_admin]).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __contains__(self, digest: bytes) -> bool:
        with self._lock:
            if digest not in self._digests:
                return False
            self._digests.move_to_end(digest)
            return True

    def add(self, digest: bytes) -> None:
        with self._lock:
            self._digests[digest] = None
            self._digests.move_to_end(digest)
            while len(self._digests) > self._max_entries:
                self._digests.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._digests)


VERIFIED = VerifiedCredentials()


def _stored_digest(username: str, password: str) -> bytes | None:
    """The digest of this credential against the user's row as stored now; None if no such user."""
    try:
        user = mlflow_auth.store.get_user(username)
    except MlflowException:
        return None
    return VERIFIED.digest(username, password, user.password_hash, bool(user.is_admin))


def authenticate_request_basic_auth_cached() -> Authorization | Response:
    """MLflow's `authenticate_request_basic_auth`, skipped when this credential was verified
    against the user's current password hash before."""
    credentials = request.authorization
    if credentials is None or credentials.username is None or credentials.password is None:
        return mlflow_auth.authenticate_request_basic_auth()  # MLflow's own 401
    username, password = credentials.username, credentials.password
    before = _stored_digest(username, password)
    if before is None:  # unknown or deleted user: MLflow refuses it (no hash to compute)
        return mlflow_auth.authenticate_request_basic_auth()
    if before in VERIFIED:
        return credentials
    result = mlflow_auth.authenticate_request_basic_auth()
    # Remember only what MLflow accepted, and only if the row did not change while it checked
    # (a password set meanwhile: the digest read before could pair this password with the old hash).
    if isinstance(result, Authorization) and _stored_digest(username, password) == before:
        VERIFIED.add(before)
    return result
