"""Per-key limits: requests per minute, tokens per minute, concurrent
requests, and a token budget.

Windows slide (the last 60 s, not the current clock minute), so a burst at
a minute boundary cannot double the rate. With Redis every decision is ONE
Lua script run atomically on the server with the server's clock: replicas
share the counters and N concurrent requests against a limit of M admit
exactly M, whichever replicas they reach. Without Redis (one process) the
same rules run in memory, where asyncio's single thread makes them exact.

Tokens are only known once the model has answered, so token limits refuse
the request *after* the one that went over (as OpenAI's do); the request
limit and the concurrency limit are exact at admission."""

from __future__ import annotations

import collections
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

WINDOW_S = 60.0
HOLD_S = 600.0
"""A concurrency slot a crashed replica never released frees itself after this."""


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    token_budget: int | None = None


@dataclass(slots=True)
class Decision:
    refused: str | None
    """``None`` (admitted) or the limit that refused: requests, tokens, concurrency, budget."""
    retry_after_s: float = 0.0
    requests: int = 0
    """Requests in the window, including this one if admitted."""
    requests_reset_s: float = 0.0
    tokens: int = 0
    tokens_reset_s: float = 0.0
    spent: int = 0
    member: str = ""
    """The concurrency slot to release (admitted with ``hold``)."""


class Limiter(Protocol):
    async def admit(self, subject: str, limits: Limits, *, hold: bool, spent_seed: int) -> Decision: ...

    async def release(self, subject: str, member: str) -> None: ...

    async def charge(self, subject: str, tokens: int, *, spent_seed: int) -> None: ...

    async def aclose(self) -> None: ...


def _n(value: int | None) -> int:
    return value if value and value > 0 else 0


def _verdict(limits: Limits, *, requests: int, tokens: int, open_slots: int, spent: int,
             hold: bool) -> str | None:
    """The one rule both limiters apply, in this order."""
    if _n(limits.token_budget) and spent >= _n(limits.token_budget):
        return "budget"
    if _n(limits.requests_per_minute) and requests >= _n(limits.requests_per_minute):
        return "requests"
    if _n(limits.tokens_per_minute) and tokens >= _n(limits.tokens_per_minute):
        return "tokens"
    if hold and _n(limits.max_concurrent) and open_slots >= _n(limits.max_concurrent):
        return "concurrency"
    return None


@dataclass(slots=True)
class _Subject:
    requests: collections.deque[float] = field(default_factory=collections.deque)
    tokens: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    slots: dict[str, float] = field(default_factory=dict)
    spent: int | None = None


class MemoryLimiter:
    """One process: the same rules on in-memory windows."""

    def __init__(self) -> None:
        self._subjects: dict[str, _Subject] = collections.defaultdict(_Subject)

    async def admit(self, subject: str, limits: Limits, *, hold: bool, spent_seed: int) -> Decision:
        now = time.monotonic()
        s = self._subjects[subject]
        while s.requests and s.requests[0] <= now - WINDOW_S:
            s.requests.popleft()
        while s.tokens and s.tokens[0][0] <= now - WINDOW_S:
            s.tokens.popleft()
        for member, until in list(s.slots.items()):
            if until <= now:
                del s.slots[member]
        if s.spent is None:
            s.spent = spent_seed
        used = sum(n for _, n in s.tokens)
        d = Decision(refused=_verdict(limits, requests=len(s.requests), tokens=used, open_slots=len(s.slots),
                                      spent=s.spent, hold=hold),
                     requests=len(s.requests), tokens=used, spent=s.spent,
                     requests_reset_s=s.requests[0] + WINDOW_S - now if s.requests else 0.0,
                     tokens_reset_s=s.tokens[0][0] + WINDOW_S - now if s.tokens else 0.0)
        if d.refused == "requests":
            d.retry_after_s = d.requests_reset_s
        elif d.refused == "tokens":
            d.retry_after_s = d.tokens_reset_s
        elif d.refused == "concurrency":
            d.retry_after_s = 1.0
        if d.refused is None:
            if _n(limits.requests_per_minute):
                s.requests.append(now)
                d.requests += 1
                d.requests_reset_s = d.requests_reset_s or WINDOW_S
            if hold and _n(limits.max_concurrent):
                d.member = uuid.uuid4().hex
                s.slots[d.member] = now + HOLD_S
        return d

    async def release(self, subject: str, member: str) -> None:
        self._subjects[subject].slots.pop(member, None)

    async def charge(self, subject: str, tokens: int, *, spent_seed: int) -> None:
        s = self._subjects[subject]
        s.tokens.append((time.monotonic(), tokens))
        s.spent = (spent_seed if s.spent is None else s.spent) + tokens

    async def aclose(self) -> None:
        pass


# KEYS: requests (zset), slots (zset), tokens (hash: second -> tokens), spent (string)
# ARGV: rpm, tpm, max_concurrent, budget, spent_seed, member, hold_ms, hold
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = 60000
local rpm, tpm, conc, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local member, hold_ms, hold = ARGV[6], tonumber(ARGV[7]), ARGV[8] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local reqs = redis.call('ZCARD', KEYS[1])
local req_reset = 0
if reqs > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  req_reset = tonumber(oldest[2]) + window - now
end
local used, oldest_bucket = 0, nil
local buckets = redis.call('HGETALL', KEYS[3])
for i = 1, #buckets, 2 do
  local b = tonumber(buckets[i])
  if (b + 1) * 1000 <= now - window then
    redis.call('HDEL', KEYS[3], buckets[i])
  else
    used = used + tonumber(buckets[i + 1])
    if oldest_bucket == nil or b < oldest_bucket then oldest_bucket = b end
  end
end
local tok_reset = 0
if oldest_bucket ~= nil then tok_reset = (oldest_bucket + 1) * 1000 + window - now end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local open = redis.call('ZCARD', KEYS[2])
redis.call('SET', KEYS[4], ARGV[5], 'NX')
local spent = tonumber(redis.call('GET', KEYS[4]))
local verdict, retry = '', 0
if budget > 0 and spent >= budget then verdict = 'budget'
elseif rpm > 0 and reqs >= rpm then verdict, retry = 'requests', req_reset
elseif tpm > 0 and used >= tpm then verdict, retry = 'tokens', tok_reset
elseif hold and conc > 0 and open >= conc then verdict, retry = 'concurrency', 1000
end
if verdict == '' then
  if rpm > 0 then
    redis.call('ZADD', KEYS[1], now, member)
    redis.call('PEXPIRE', KEYS[1], window)
    reqs = reqs + 1
    if req_reset == 0 then req_reset = window end
  end
  if hold and conc > 0 then
    redis.call('ZADD', KEYS[2], now + hold_ms, member)
    redis.call('PEXPIRE', KEYS[2], hold_ms)
  end
end
return {verdict, retry, reqs, req_reset, used, tok_reset, spent}
"""

# KEYS: tokens (hash), spent; ARGV: tokens, spent_seed
_CHARGE = """
local t = redis.call('TIME')
redis.call('HINCRBY', KEYS[1], t[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], 120000)
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return redis.call('INCRBY', KEYS[2], ARGV[1])
"""


class RedisLimiter:
    """Replicas share the windows in Redis; each decision is one atomic script."""

    def __init__(self, url: str, prefix: str = "responsa:limits") -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.from_url(url, socket_connect_timeout=5)
        self._prefix = prefix
        self._admit = self._redis.register_script(_ADMIT)
        self._charge = self._redis.register_script(_CHARGE)

    def _keys(self, subject: str, *names: str) -> list[str]:
        return [f"{self._prefix}:{{{subject}}}:{n}" for n in names]  # one hash slot per subject

    async def admit(self, subject: str, limits: Limits, *, hold: bool, spent_seed: int) -> Decision:
        member = uuid.uuid4().hex
        verdict, retry, reqs, req_reset, used, tok_reset, spent = await self._admit(
            keys=self._keys(subject, "requests", "slots", "tokens", "spent"),
            args=[_n(limits.requests_per_minute), _n(limits.tokens_per_minute), _n(limits.max_concurrent),
                  _n(limits.token_budget), spent_seed, member, int(HOLD_S * 1000), 1 if hold else 0])
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        return Decision(refused=verdict or None, retry_after_s=int(retry) / 1000, requests=int(reqs),
                        requests_reset_s=int(req_reset) / 1000, tokens=int(used), tokens_reset_s=int(tok_reset) / 1000,
                        spent=int(spent), member=member if not verdict and hold and _n(limits.max_concurrent) else "")

    async def release(self, subject: str, member: str) -> None:
        await self._redis.zrem(self._keys(subject, "slots")[0], member)

    async def charge(self, subject: str, tokens: int, *, spent_seed: int) -> None:
        await self._charge(keys=self._keys(subject, "tokens", "spent"), args=[tokens, spent_seed])

    async def aclose(self) -> None:
        await self._redis.aclose()
