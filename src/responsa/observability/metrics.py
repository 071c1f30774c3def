"""Prometheus metrics (``prometheus_client``), served at ``/metrics``.

Label sets are bounded on purpose: routes are the route *templates*
(``/v1/responses/{response_id}``, never an id), keys are a short hash of
the tenant, tool outcomes are counted by tool type (MCP server labels and
tool names come from requests, so they would let a client grow the series
without bound).

Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory before start-up and ``/metrics`` aggregates every process's
values (``prometheus_client``'s multiprocess mode; gauges sum live
processes)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

REQUESTS = Counter("responsa_http_requests", "HTTP requests and WebSocket connections by route and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("responsa_http_request_duration_seconds",
                    "Time from request to the last byte sent (a stream's whole life).", ["route"],
                    buckets=_LATENCY)
TTFE = Histogram("responsa_time_to_first_event_seconds",
                 "Time from request to the first byte of a streamed (SSE) response.", ["route"], buckets=_LATENCY)
UPSTREAM = Histogram("responsa_upstream_duration_seconds",
                     "Duration of one model call, from the request to the upstream's last event.", ["provider"],
                     buckets=_LATENCY)
UPSTREAM_FIRST = Histogram("responsa_upstream_time_to_first_token_seconds",
                           "Time from a model call to its first event.", ["provider"], buckets=_LATENCY)
UPSTREAM_ERRORS = Counter("responsa_upstream_errors", "Failed model calls by provider and error code.",
                          ["provider", "code"])
STORE = Histogram("responsa_store_duration_seconds", "Duration of one store operation.", ["operation"],
                  buckets=_FAST)
TOKENS = Counter("responsa_tokens", "Tokens by model, API key (hashed) and direction.",
                 ["model", "key", "direction"])
OPEN_STREAMS = Gauge("responsa_open_streams", "Server-sent event streams being written now.",
                     multiprocess_mode="livesum")
OPEN_WEBSOCKETS = Gauge("responsa_open_websockets", "Open WebSocket connections.", multiprocess_mode="livesum")
BACKGROUND = Gauge("responsa_background_responses",
                   "Background responses by status (queued = waiting for a worker), for the whole database.",
                   ["status"], multiprocess_mode="mostrecent")
TAKEOVERS = Counter("responsa_background_takeovers",
                    "Background responses taken over from a replica whose lease expired, by outcome "
                    "(rerun: nothing had been emitted; failed: marked worker_lost).", ["outcome"])
TOOL_CALLS = Counter("responsa_tool_calls", "Server-side tool calls by tool type and outcome.",
                     ["type", "outcome"])
TOOL_LATENCY = Histogram("responsa_tool_call_duration_seconds", "Duration of one server-side tool call.",
                         ["type"], buckets=_LATENCY)
GC_PAUSE = Histogram("responsa_gc_pause_seconds", "Garbage collector pauses by generation (2: full collection).",
                     ["generation"], buckets=_FAST)
RATE_LIMITED = Counter("responsa_rate_limited", "Requests refused by a per-key limit, by limit.", ["limit"])


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
