"""API keys: ``Authorization: Bearer`` (openai) or ``x-api-key`` (the
reference client may send either). Each key is its own tenant; only a hash
of it is ever kept, so the store never holds a secret."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import HTTPConnection

from responsa.protocol.errors import APIError


def api_key(conn: HTTPConnection) -> str | None:
    auth = conn.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return conn.headers.get("x-api-key") or None


def tenant_of(conn: HTTPConnection, allowed: frozenset[str]) -> str:
    key = api_key(conn)
    if allowed:
        if key is None:
            raise APIError("Missing API key: send 'Authorization: Bearer <key>'.", status=401,
                           type="authentication_error", code="missing_api_key")
        # Bytes: compare_digest refuses str with non-ASCII characters, which a header can carry.
        if not any(hmac.compare_digest(key.encode(), k.encode()) for k in allowed):
            raise APIError("Incorrect API key provided.", status=401, type="authentication_error",
                           code="invalid_api_key")
    if key is None:
        return "anonymous"
    return hashlib.sha256(key.encode()).hexdigest()[:32]
