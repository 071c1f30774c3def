"""One pure-ASGI middleware for every request: request id, the per-request
``Observation``, the per-key gate (auth + limits), metrics and the access
log line. Pure ASGI rather than ``BaseHTTPMiddleware``: it must not buffer
streams, and it stays a few microseconds per request (see
``benchmarks/overhead.py``)."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from responsa.observability import context, logs, metrics, tracing
from responsa.observability.logs import ACCESS
from responsa.protocol.errors import APIError, body_for

_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_PREFIX = os.urandom(6).hex()
_IDS = itertools.count(1)
"""Request ids: a random per-process prefix and a counter (unique across
replicas and restarts without a system call per request)."""

Release = Callable[[], Awaitable[None]]


class Gate(Protocol):
    """Authenticates and admits a request before it runs (``responsa.keys``).
    Raises ``APIError`` (a 401 or a 429 with ``headers``) to refuse it;
    returns what to call once the request is over, if anything."""

    async def enter(self, scope: Scope, key: str | None, obs: context.Observation) -> Release | None: ...


def _scan(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bytes | None]:
    """The API key (``Authorization: Bearer`` or ``x-api-key``, as
    ``api.auth`` reads them) and the caller's ``x-request-id``, in one pass."""
    bearer = other = rid = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key":
            if value:
                other = value.decode("latin-1")
        elif name == b"x-request-id":
            rid = value
    return bearer or other, rid


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, routes: dict[Any, str], gate: Gate | None = None) -> None:
        self.app = app
        self.routes = routes
        self.gate = gate
        # Metric children by label values: ``labels()`` validates and locks on every call.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[str, tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        key, asked = _scan(headers)
        # The caller's id when it is a sane token (a request followed through a proxy chain), else a new one.
        rid = asked.decode() if asked is not None and _VALID_ID.match(asked) else f"req_{_PREFIX}{next(_IDS):012x}"
        digest = hashlib.sha256(key.encode("latin-1")).hexdigest() if key is not None else None
        obs = context.Observation(request_id=rid, started=started,
                                  tenant=digest[:32] if digest is not None else "anonymous", key_hash=digest)
        if tracing.enabled():
            obs.trace_context = tracing.extract(headers)
        token = context.bind(obs)
        rid_header = (b"x-request-id", rid.encode())
        stream = False
        accepted = False

        async def send_observed(message: Message) -> None:
            nonlocal stream, accepted
            mtype = message["type"]
            if mtype == "http.response.start":
                obs.status = message["status"]
                out = list(message.get("headers", ()))
                out.append(rid_header)
                out.extend(obs.extra_headers)
                message["headers"] = out
                for name, value in out:
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        stream = True
                        metrics.OPEN_STREAMS.inc()
            elif mtype == "http.response.body":
                if not obs.first_byte:
                    obs.first_byte = time.perf_counter()
            elif mtype == "websocket.accept":
                obs.status = 101
                accepted = True
                metrics.OPEN_WEBSOCKETS.inc()
                message["headers"] = [*message.get("headers", ()), rid_header]
            elif mtype == "websocket.close" and not obs.status:
                obs.status = 403
            elif mtype == "websocket.http.response.start":
                obs.status = message["status"]
            await send(message)

        release: Release | None = None
        try:
            if self.gate is not None:
                try:
                    release = await self.gate.enter(scope, key, obs)
                except APIError as refused:
                    await self._refuse(scope, send_observed, refused, rid_header)
                    return
            await self.app(scope, receive, send_observed)
        except BaseException:
            if not obs.status:
                obs.status = 500
            raise
        finally:
            if release is not None:
                await release()
            if stream:
                metrics.OPEN_STREAMS.dec()
            if accepted:
                metrics.OPEN_WEBSOCKETS.dec()
            context.unbind(token)
            self._finish(scope, obs, stream)

    async def _refuse(self, scope: Scope, send: Send, exc: APIError, rid_header: tuple[bytes, bytes]) -> None:
        body = orjson.dumps(body_for(exc, scope.get("path", "")))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   *((k.encode(), v.encode()) for k, v in getattr(exc, "headers", {}).items())]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": exc.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": exc.status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": exc.message[:120]})

    def _finish(self, scope: Scope, obs: context.Observation, stream: bool) -> None:
        end = time.perf_counter()
        route = self.routes.get(scope.get("endpoint"), "other")
        method = scope.get("method", "WS")
        duration = end - obs.started
        labels = (method, route, obs.status)
        counted = self._counted.get(labels)
        if counted is None:
            counted = self._counted[labels] = metrics.REQUESTS.labels(method, route, str(obs.status))
        counted.inc()
        timed = self._timed.get(route)
        if timed is None:
            timed = self._timed[route] = (metrics.LATENCY.labels(route), metrics.TTFE.labels(route))
        timed[0].observe(duration)
        ttfe = obs.first_byte - obs.started if obs.first_byte and stream else None
        if ttfe is not None:
            timed[1].observe(ttfe)
        writer = logs.access_writer
        if writer is None and not ACCESS.isEnabledFor(logging.INFO):
            return
        fields = {
            "request_id": obs.request_id, "method": method, "route": route, "status": obs.status,
            "tenant": obs.tenant[:16], "key_id": obs.key_id, "model": obs.model, "response_id": obs.response_id,
            "duration_ms": round(duration * 1000, 2), "ttfe_ms": round(ttfe * 1000, 2) if ttfe is not None else None,
            "upstream_ms": round(obs.upstream_s * 1000, 2), "store_ms": round(obs.store_s * 1000, 2),
            "input_tokens": obs.input_tokens, "output_tokens": obs.output_tokens, "error_code": obs.error_code}
        message = f"{method} {route} {obs.status}"
        if writer is not None:
            writer.write(message, fields)
        else:
            ACCESS.info("%s", message, extra={"fields": fields})
