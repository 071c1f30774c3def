"""``/healthz`` (the process answers), ``/health`` (the same, plus the
state of supervised background tasks and the Redis fan-out: ``degraded``), ``/readyz`` (it can serve: store and
Redis reachable, migrations applied, providers configured) and
``/metrics`` (Prometheus). None of them needs an API key: a load balancer
or a scraper calls them. ``/readyz`` names what failed but never echoes a
URL or a secret."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa import __version__
from responsa.api.responses import json_response
from responsa.api.state import state
from responsa.observability import metrics
from responsa.supervise import Supervisor

CHECK_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    """Also the process id: which worker of ``serve --workers N`` answered."""
    return json_response({"status": "ok", "version": __version__, "pid": os.getpid()})


async def health(request: Request) -> Response:
    """``ok``, or ``degraded`` (still 200: the process answers) when a
    supervised background task failed recently (``responsa.supervise``) or
    the Redis fan-out is unreachable (it then degrades to polling the store);
    ``checks`` says which."""
    st = getattr(request.app.state, "responsa", None)
    if st is None:
        return json_response({"status": "ok", "version": __version__})
    tasks: dict[str, Any] = {}
    healthy = True
    for owner in (st.store, getattr(st.store, "driver", None), st.engine.background, st.engine.fanout,
                  st.engine.vector_stores):
        supervisor = getattr(owner, "supervisor", None)
        if isinstance(supervisor, Supervisor):
            tasks.update(supervisor.status())
            healthy = healthy and supervisor.healthy
    checks: dict[str, Any] = {"tasks": tasks}
    redis_state = getattr(st.engine.fanout, "state", None)
    if isinstance(redis_state, str):
        checks["redis"] = redis_state
        healthy = healthy and redis_state == "ok"
    return json_response({"status": "ok" if healthy else "degraded", "version": __version__, "checks": checks})


async def _check(work: Awaitable[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(work, CHECK_TIMEOUT_S)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_S:g} s"}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    out: dict[str, Any] = {"ok": detail is None, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if detail is not None:
        out["error"] = detail
    return out


async def readyz(request: Request) -> Response:
    st = state(request)
    ops = request.app.state.ops

    async def store() -> str | None:
        await st.store.get_response("", "resp_readyz")
        return None

    async def migrations() -> str | None:
        missing = await ops.db.missing_migrations()
        return f"not applied: {missing}" if missing else None

    async def redis() -> str | None:
        await ops.redis.ping()
        return None

    async def providers() -> str | None:
        settings = st.settings
        default = settings.aliases.get(settings.default_model, settings.default_model).partition("/")[0]
        if default not in settings.providers:
            return f"the default model's provider {default!r} is not configured"
        missing = [p.name for p in settings.providers.values() if p.api_key_env and not p.api_key]
        return f"API key variable not set for: {', '.join(missing)}" if missing else None

    checks = {"store": store(), "migrations": migrations(), "providers": providers()}
    if ops.redis is not None:
        checks["redis"] = redis()
    results = dict(zip(checks, await asyncio.gather(*(_check(c) for c in checks.values())), strict=True))
    ready = all(r["ok"] for r in results.values())
    return json_response({"status": "ready" if ready else "unavailable", "checks": results},
                         status=200 if ready else 503)


async def prometheus(request: Request) -> Response:
    ops = request.app.state.ops
    try:
        counts = await asyncio.wait_for(ops.db.background_counts(), CHECK_TIMEOUT_S)
        for status, n in counts.items():
            metrics.BACKGROUND.labels(status).set(n)
    except Exception:
        pass  # the scrape still answers; the queue gauge keeps its last value
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/health", health, methods=["GET"]),
          Route("/readyz", readyz, methods=["GET"]), Route("/metrics", prometheus, methods=["GET"])]
