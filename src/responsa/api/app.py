"""The ASGI application: routes, error handlers, start-up and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from responsa import gcpolicy, redact
from responsa.api import (
    boundary,
    chat,
    console,
    conversations,
    disconnect,
    dry_run,
    embeddings,
    errors,
    files,
    health,
    messages,
    models,
    openapi,
    prompts,
    responses,
    usage,
    vector_stores,
    websocket,
)
from responsa.api.state import AppState
from responsa.config import Settings, load_settings
from responsa.engine import loop
from responsa.engine.compaction import key_from
from responsa.engine.engine import Engine
from responsa.fanout import from_url as fanout_from_url
from responsa.keys.db import OpsDB
from responsa.keys.gate import KeyGate
from responsa.keys.limits import Limiter, MemoryLimiter, RedisLimiter
from responsa.observability import tracing
from responsa.observability.instrument import ObservedRegistry, instrument_store
from responsa.observability.middleware import ObservabilityMiddleware
from responsa.protocol.errors import APIError
from responsa.store import open_store


class Ops:
    """What the operator-facing features hold: the keys/usage database
    connection, the per-key gate and, with ``redis_url``, a Redis client
    (readiness) and the shared limiter."""

    def __init__(self, settings: Settings) -> None:
        self.db = OpsDB(settings.database_url)
        self.redis: Any = None
        limiter: Limiter = MemoryLimiter()
        if settings.redis_url:
            import redis.asyncio as aioredis

            self.redis = aioredis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
            limiter = RedisLimiter(settings.redis_url)
        self.gate = KeyGate(self.db, limiter, configured=settings.api_keys, admin=settings.admin_keys)

    async def open(self) -> None:
        """After the store opened (it applies the migrations these tables come from)."""
        if not tracing.enabled():
            tracing.configure_from_env()
        await self.db.open()
        await self.gate.start()

    async def aclose(self) -> None:
        await self.gate.stop()
        await self.db.close()
        if self.redis is not None:
            await self.redis.aclose()


def _route_names(routes: list[BaseRoute]) -> dict[Any, str]:
    """Endpoint -> route template, the bounded label metrics and logs use."""
    return {r.endpoint: r.path for r in routes if isinstance(r, Route | WebSocketRoute)}


def create_app(settings: Settings | None = None, *, tune_gc: bool = False) -> Starlette:
    """``tune_gc``: once start-up is over, freeze its heap and raise the
    collector's thresholds (``gcpolicy``; ``responsa serve`` asks for it)."""
    settings = settings or load_settings()
    redact.install()  # before anything logs: libraries log headers and URLs with secrets in them
    ops = Ops(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = instrument_store(open_store(settings.database_url, alone=loop.alone))
        await store.open()
        app.state.ops = ops
        await ops.open()
        registry = ObservedRegistry(settings)
        secret = settings.secret_key or await store.server_secret("compaction")
        fanout = fanout_from_url(settings.redis_url)
        await fanout.open()
        engine = Engine(settings=settings, store=store, registry=registry, fanout=fanout,
                        compaction_key=key_from(secret))
        app.state.responsa = AppState(settings=settings, store=store, registry=registry, engine=engine,
                                      api_keys=frozenset(settings.api_keys))
        await engine.start()
        if tune_gc:
            gcpolicy.after_startup()
        try:
            yield
        finally:
            await engine.stop()
            await fanout.close()
            await registry.aclose()
            await store.close()
            await ops.aclose()

    routes: list[BaseRoute] = [*health.routes, *usage.routes, *responses.routes, *chat.routes, *messages.routes,
                               *embeddings.routes,
                               *dry_run.routes, *websocket.routes, *models.routes, *conversations.routes,
                               *prompts.routes, *vector_stores.routes, *files.routes, *console.routes]
    routes.extend(openapi.routes_for(routes))  # /openapi.json and /docs, generated from the routes above
    return Starlette(
        routes=routes,
        exception_handlers={APIError: errors.api_error, HTTPException: errors.http_error,
                            Exception: errors.unhandled},
        lifespan=lifespan,
        # Observability outermost: every request (a refused one too) gets a request id, metrics and a log line.
        # Ids with NUL: 404/400 before any route or store sees them. A client
        # that hangs up cancels its request's work (non-streamed ones too).
        middleware=[Middleware(ObservabilityMiddleware, routes=_route_names(routes), gate=ops.gate),
                    Middleware(boundary.NulGuard), Middleware(disconnect.CancelOnDisconnect)],
    )
