"""The per-key gate the observability middleware calls before a request
runs: who is calling (a managed key, a configured key, or anyone while no
key exists), and may they run another request right now.

Managed keys (``responsa keys create``) live in the database and are
reloaded every ``REFRESH_S`` on every replica, so a new team's key works
and a revoked key stops working within seconds, without a restart. Once
any managed key is active, only managed or configured keys are accepted.

Usage (requests and tokens by key, model and day) is summed in memory and
written every ``FLUSH_S`` as one upsert per row, not one write per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Scope

from responsa.keys.db import ApiKey, OpsDB, UsageRow, hash_key
from responsa.keys.limits import Decision, Limiter, Limits
from responsa.observability import context, metrics
from responsa.protocol.errors import APIError

log = logging.getLogger("responsa.keys")

REFRESH_S = 2.0
FLUSH_S = 1.0
METERED = frozenset({"/v1/responses", "/v1/responses/compact", "/v1/chat/completions", "/v1/messages"})
"""Paths whose POST (or WebSocket) runs a model: the ones limits apply to."""


class LimitExceeded(APIError):
    """A 429 carrying ``Retry-After`` and ``x-ratelimit-*`` headers."""

    def __init__(self, message: str, *, code: str, headers: dict[str, str]) -> None:
        super().__init__(message, status=429, type="rate_limit_error" if code != "insufficient_quota"
                         else "insufficient_quota", code=code)
        self.headers = headers


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 0)}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def rate_headers(limits: Limits, d: Decision) -> dict[str, str]:
    out: dict[str, str] = {}
    if limits.requests_per_minute:
        out["x-ratelimit-limit-requests"] = str(limits.requests_per_minute)
        out["x-ratelimit-remaining-requests"] = str(max(limits.requests_per_minute - d.requests, 0))
        out["x-ratelimit-reset-requests"] = _duration(d.requests_reset_s)
    if limits.tokens_per_minute:
        out["x-ratelimit-limit-tokens"] = str(limits.tokens_per_minute)
        out["x-ratelimit-remaining-tokens"] = str(max(limits.tokens_per_minute - d.tokens, 0))
        out["x-ratelimit-reset-tokens"] = _duration(d.tokens_reset_s)
    if limits.token_budget:
        out["x-ratelimit-remaining-budget-tokens"] = str(max(limits.token_budget - d.spent, 0))
    return out


_MESSAGES = {
    "requests": "Rate limit reached for requests per minute ({limit}) on this API key. Retry after {retry}.",
    "tokens": "Rate limit reached for tokens per minute ({limit}) on this API key. Retry after {retry}.",
    "concurrency": "Too many concurrent requests ({limit}) on this API key. Retry when one has finished.",
    "budget": "This API key has used its token budget ({limit} tokens).",
}


_day: tuple[int, str] = (-1, "")


def _today() -> str:
    """The UTC date, as usage rows key it (computed once a day, not per request)."""
    global _day
    number = int(time.time() // 86400)
    if number != _day[0]:
        _day = (number, datetime.datetime.fromtimestamp(number * 86400, datetime.UTC).date().isoformat())
    return _day[1]


class UsageBuffer:
    def __init__(self, db: OpsDB) -> None:
        self._db = db
        self._rows: dict[tuple[str, str, str], list[Any]] = {}
        self._lock = asyncio.Lock()

    def add(self, tenant: str, key_id: str | None, model: str, input_tokens: int, output_tokens: int) -> None:
        day = _today()
        row = self._rows.get((tenant, model, day))
        if row is None:
            row = self._rows[(tenant, model, day)] = [key_id, 0, 0, 0]
        row[1] += 1
        row[2] += input_tokens
        row[3] += output_tokens

    async def flush(self) -> None:
        async with self._lock:
            rows, self._rows = self._rows, {}
            if not rows:
                return
            try:
                await self._db.add_usage([UsageRow(t, m, d, k, n, i, o) for (t, m, d), (k, n, i, o) in rows.items()])
            except Exception:
                log.warning("could not write usage; keeping it for the next flush", exc_info=True)
                for k, (key_id, n, i, o) in rows.items():
                    row = self._rows.setdefault(k, [key_id, 0, 0, 0])
                    row[1] += n
                    row[2] += i
                    row[3] += o


class Accounting:
    """Charged by the provider wrapper (tokens, as each model call reports
    them) and the turn hook (one finished response)."""

    __slots__ = ("_entry", "_gate", "_tenant")

    def __init__(self, gate: KeyGate, entry: ApiKey | None, tenant: str) -> None:
        self._gate = gate
        self._entry = entry
        self._tenant = tenant

    def tokens(self, n: int) -> None:
        entry = self._entry
        if entry is not None and n and (entry.tokens_per_minute or entry.token_budget):
            self._gate.charge(entry, n)

    def response(self, model: str, input_tokens: int, output_tokens: int) -> None:
        self._gate.usage.add(self._tenant, self._entry.id if self._entry else None, model, input_tokens,
                             output_tokens)


class KeyGate:
    def __init__(self, db: OpsDB, limiter: Limiter, *, configured: list[str], admin: list[str]) -> None:
        self.db = db
        self.limiter = limiter
        self.usage = UsageBuffer(db)
        self._configured = [k.encode("latin-1", "replace") for k in configured]
        self._admin = {hashlib.sha256(k.encode("latin-1", "replace")).hexdigest()[:32] for k in admin}
        self._by_hash: dict[str, ApiKey] = {}
        self._spent: dict[str, int] = {}
        self._misses: dict[str, float] = {}
        self._required = bool(configured)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._loop = asyncio.create_task(self._forever(), name="keys-refresh")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.usage.flush()
        await self.limiter.aclose()

    async def _forever(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(FLUSH_S)
            await self.usage.flush()
            ticks += 1
            if ticks * FLUSH_S >= REFRESH_S:
                ticks = 0
                try:
                    await self.refresh()
                except Exception:
                    log.warning("could not reload API keys; keeping the last known set", exc_info=True)

    async def refresh(self) -> None:
        keys = await self.db.list_keys()
        self._by_hash = {k.key_hash: k for k in keys}
        self._misses = {}
        self._required = bool(self._configured) or any(k.revoked_at is None for k in keys)
        self._spent = {k.id: await self.db.spent(k.tenant) for k in keys if k.token_budget and k.revoked_at is None}

    def is_admin(self, tenant: str) -> bool:
        return tenant in self._admin

    def charge(self, entry: ApiKey, n: int) -> None:
        task = asyncio.create_task(self.limiter.charge(entry.id, n, spent_seed=self._spent.get(entry.id, 0)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def enter(self, scope: Scope, key: str | None, obs: context.Observation) -> (
            Callable[[], Awaitable[None]] | None):
        path: str = scope["path"]
        if not path.startswith("/v1/"):
            return None
        entry = await self._lookup(obs.key_hash or hash_key(key)) if key is not None else None
        if entry is not None:
            if entry.revoked_at is not None:
                raise APIError("This API key has been revoked.", status=401, type="authentication_error",
                               code="invalid_api_key")
            obs.key_id = entry.id
            scope["responsa.tenant"] = entry.tenant
        elif self._required and not self._known(key, obs.tenant):
            if key is None:
                raise APIError("Missing API key: send 'Authorization: Bearer <key>'.", status=401,
                               type="authentication_error", code="missing_api_key")
            raise APIError("Incorrect API key provided.", status=401, type="authentication_error",
                           code="invalid_api_key")
        elif obs.tenant in self._admin:
            scope["responsa.tenant"] = obs.tenant
        obs.accounting = Accounting(self, entry, obs.tenant)
        if entry is None or not entry.limited or path not in METERED or scope.get("method", "GET") not in (
                "POST", "GET"):
            return None
        if scope["type"] == "http" and scope["method"] != "POST":
            return None
        limits = Limits(entry.requests_per_minute, entry.tokens_per_minute, entry.max_concurrent, entry.token_budget)
        decision = await self.limiter.admit(entry.id, limits, hold=True, spent_seed=self._spent.get(entry.id, 0))
        headers = rate_headers(limits, decision)
        if decision.refused is not None:
            metrics.RATE_LIMITED.labels(decision.refused).inc()
            if decision.refused != "budget":
                headers["retry-after"] = str(max(math.ceil(decision.retry_after_s), 1))
            limit = {"requests": limits.requests_per_minute, "tokens": limits.tokens_per_minute,
                     "concurrency": limits.max_concurrent, "budget": limits.token_budget}[decision.refused]
            raise LimitExceeded(_MESSAGES[decision.refused].format(
                limit=limit, retry=_duration(decision.retry_after_s)),
                code="insufficient_quota" if decision.refused == "budget" else "rate_limit_exceeded",
                headers=headers)
        obs.extra_headers.extend((k.encode(), v.encode()) for k, v in headers.items())
        if not decision.member:
            return None
        member, subject = decision.member, entry.id

        async def release() -> None:
            try:
                await asyncio.shield(self.limiter.release(subject, member))
            except Exception:
                log.warning("could not release a concurrency slot (it expires by itself)", exc_info=True)

        return release

    async def _lookup(self, digest: str) -> ApiKey | None:
        """The managed key, from the last reload; a key not seen then is read
        from the database (at most once per ``REFRESH_S`` per key), so a key
        created a moment ago works on its first request."""
        entry = self._by_hash.get(digest)
        if entry is not None:
            return entry
        now = time.monotonic()
        if self._misses.get(digest, 0.0) > now:
            return None
        found = await self.db.find_key(digest)
        if found is None:
            if len(self._misses) > 10_000:
                self._misses = {k: v for k, v in self._misses.items() if v > now}
            self._misses[digest] = now + REFRESH_S
            return None
        self._by_hash[digest] = found
        if found.revoked_at is None:
            self._required = True
            if found.token_budget:
                self._spent[found.id] = await self.db.spent(found.tenant)
        return found

    def _known(self, key: str | None, tenant: str) -> bool:
        if key is None:
            return False
        raw = key.encode("latin-1", "replace")
        return any(hmac.compare_digest(raw, k) for k in self._configured) or tenant in self._admin
