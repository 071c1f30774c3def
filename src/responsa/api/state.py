"""What every route needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import HTTPConnection, Request

from responsa.api.auth import tenant_of
from responsa.api.boundary import check_raw
from responsa.config import Settings
from responsa.engine.engine import Engine
from responsa.files import FileStore
from responsa.protocol.errors import APIError, invalid
from responsa.providers.registry import Registry
from responsa.store.base import Store
from responsa.vectorstores import VectorStores


@dataclass(slots=True)
class AppState:
    settings: Settings
    store: Store
    registry: Registry
    engine: Engine
    """Runs every turn (``engine.engine``); the routes only translate HTTP to its calls."""
    api_keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def vector_stores(self) -> VectorStores:
        """Vector stores (``responsa.vectorstores``), the engine's."""
        return self.engine.vector_stores

    @property
    def files(self) -> FileStore:
        """Uploaded files (``responsa.files.FileStore``), the engine's."""
        return self.engine.files

    def tenant(self, conn: HTTPConnection) -> str:
        vetted: str | None = conn.scope.get("responsa.tenant")  # a managed or admin key (``keys.gate``)
        return vetted if vetted is not None else tenant_of(conn, self.api_keys)


def state(conn: HTTPConnection) -> AppState:
    st: AppState = conn.app.state.responsa
    return st


def object_body(raw: object, allowed: frozenset[str]) -> dict[str, Any]:
    """A JSON body that must be an object of the ``allowed`` keys (a 400 naming the first other one)."""
    if not isinstance(raw, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise invalid(f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
    return raw


async def json_body(request: Request, limit: int) -> object:
    """The decoded body, or a 4xx a person can act on."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise APIError(f"Request body too large: {declared} bytes (limit {limit}).", status=413,
                       code="request_too_large")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(f"Request body too large (limit {limit} bytes).", status=413,
                           code="request_too_large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise APIError("The request body is empty: send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise APIError(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None
    check_raw(raw, body)
    return body
