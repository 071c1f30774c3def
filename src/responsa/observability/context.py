"""The per-request record every layer adds to: one small object in a
context variable, created by the middleware. Work started by a request
(streams, background jobs started from it) inherits it because asyncio
tasks copy the context they were created in.

Wrappers read it with ``current()``: ``None`` outside a request (a
background job re-run by the sweeper), and every hook copes with that."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Observation:
    request_id: str
    started: float
    """``time.perf_counter()`` when the request arrived."""
    tenant: str = "anonymous"
    """The tenant id (already a hash of the API key, never the key)."""
    key_hash: str | None = None
    """SHA-256 of the API key (hex), computed once per request."""
    key_id: str | None = None
    """The managed API key (``responsa keys``) the request authenticated with."""
    model: str | None = None
    response_id: str | None = None
    status: int = 0
    first_byte: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    upstream_s: float = 0.0
    store_s: float = 0.0
    error_code: str | None = None
    trace_context: Any = None
    """The OpenTelemetry context of the current response span (tracing on)."""
    accounting: Any = None
    """Where token usage is charged (``responsa.keys.Accounting``), if anywhere."""
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Response headers added by the limiter (``x-ratelimit-*``)."""


_CURRENT: ContextVar[Observation | None] = ContextVar("responsa_observation", default=None)


def current() -> Observation | None:
    return _CURRENT.get()


def bind(obs: Observation | None) -> Any:
    """Make ``obs`` current; returns the token ``unbind`` needs."""
    return _CURRENT.set(obs)


def unbind(token: Any) -> None:
    _CURRENT.reset(token)
