"""The ASGI application: routes, error handlers, start-up and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa import __version__, redact
from responsa.api import (
    boundary,
    compact,
    console,
    conversations,
    disconnect,
    errors,
    models,
    prompts,
    responses,
    websocket,
)
from responsa.api.responses import json_response
from responsa.api.state import AppState
from responsa.config import Settings, load_settings
from responsa.engine.compaction import key_from
from responsa.engine.engine import Engine
from responsa.fanout import from_url as fanout_from_url
from responsa.protocol.errors import APIError
from responsa.providers.registry import Registry
from responsa.store import open_store


async def health(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    redact.install()  # before anything logs: libraries log headers and URLs with secrets in them

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = open_store(settings.database_url)
        await store.open()
        registry = Registry(settings)
        secret = settings.secret_key or await store.server_secret("compaction")
        fanout = fanout_from_url(settings.redis_url)
        await fanout.open()
        engine = Engine(settings=settings, store=store, registry=registry, fanout=fanout,
                        compaction_key=key_from(secret))
        app.state.responsa = AppState(settings=settings, store=store, registry=registry, engine=engine,
                                      api_keys=frozenset(settings.api_keys))
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()
            await fanout.close()
            await registry.aclose()
            await store.close()

    return Starlette(
        routes=[Route("/health", health, methods=["GET"]), *responses.routes, *compact.routes, *websocket.routes,
                *models.routes, *conversations.routes, *prompts.routes, *console.routes],
        exception_handlers={APIError: errors.api_error, HTTPException: errors.http_error,
                            Exception: errors.unhandled},
        lifespan=lifespan,
        # Ids with NUL: 404/400 before any route or store sees them. A client
        # that hangs up cancels its request's work (non-streamed ones too).
        middleware=[Middleware(boundary.NulGuard), Middleware(disconnect.CancelOnDisconnect)],
    )
