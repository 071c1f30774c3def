"""Wrappers that observe the store, the providers, the turn loop and tool
calls from the outside, so those modules need no instrumentation of their
own (one decorator on the turn loop and one context manager around an MCP
call are the only hook lines inside the engine and tools)."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

import orjson

from responsa.config import Settings
from responsa.observability import context, metrics, tracing
from responsa.providers import base as m
from responsa.providers.registry import Registry
from responsa.store.base import Store

log = logging.getLogger("responsa.observability")

P = ParamSpec("P")
T = TypeVar("T")
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


# -- store ---------------------------------------------------------------------


class _TimedStore:
    """Every coroutine method of the store, timed into the store histogram
    and the request's ``store_ms``; everything else passes through."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        for name, _fn in inspect.getmembers(type(inner), inspect.iscoroutinefunction):
            if not name.startswith("_"):
                setattr(self, name, self._timed(name, getattr(inner, name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @staticmethod
    def _timed(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        hist = metrics.STORE.labels(name)
        takeover = {"claim_job": "rerun", "close_job": "failed"}.get(name)

        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                hist.observe(spent)
                obs = context.current()
                if obs is not None:
                    obs.store_s += spent
            # A successful claim is the sweeper taking over a queued job; a
            # close_job with a finite ``expired_before`` is it failing a lost one
            # (cancels pass infinity).
            if takeover is not None and result and (
                    takeover == "rerun" or math.isfinite(kwargs.get("expired_before", math.inf))):
                metrics.TAKEOVERS.labels(takeover).inc()
            return result

        return timed


def instrument_store(store: Store) -> Store:
    return cast(Store, _TimedStore(store))


# -- providers ------------------------------------------------------------------


class ObservedProvider:
    """A provider whose model calls are timed, counted, charged to the
    request's key and traced as ``chat {model}`` spans."""

    def __init__(self, inner: m.Provider, kind: str) -> None:
        self._inner = inner
        self.name = inner.name
        self._system = tracing.provider_name(kind, inner.name)
        self._latency = metrics.UPSTREAM.labels(inner.name)
        self._first = metrics.UPSTREAM_FIRST.labels(inner.name)
        self._tokens: dict[tuple[str, str], tuple[Any, Any]] = {}
        """TOKENS children by (model, key): ``labels()`` validates and locks on every call."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def capabilities(self, model: str) -> m.Capabilities:
        return self._inner.capabilities(model)

    async def list_models(self) -> list[str]:
        return await self._inner.list_models()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def stream(self, req: m.ModelRequest) -> AsyncIterator[m.ModelEvent]:
        obs = context.current()
        model = f"{self.name}/{req.model}"
        if obs is not None and obs.model is None:
            obs.model = model
        span = None
        if tracing.enabled():
            span = tracing.start_span(f"chat {req.model}", obs.trace_context if obs else None, {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": self._system,
                "gen_ai.request.model": req.model, "gen_ai.request.temperature": req.temperature,
                "gen_ai.request.top_p": req.top_p, "gen_ai.request.max_tokens": req.max_output_tokens,
                "gen_ai.request.presence_penalty": req.presence_penalty,
                "gen_ai.request.frequency_penalty": req.frequency_penalty}, client=True)
            if tracing.capture_content:
                span.set_attribute("gen_ai.input.messages", orjson.dumps(req.items, default=str).decode())
                if req.instructions:
                    span.set_attribute("gen_ai.system_instructions", req.instructions)
        started = time.perf_counter()
        first = True
        text: list[str] = []
        usage_type = m.Usage
        try:
            if span is None:  # the common path: one identity test per event
                async for ev in self._inner.stream(req):
                    if first:
                        first = False
                        self._first.observe(time.perf_counter() - started)
                    if type(ev) is usage_type:
                        self._usage(obs, model, ev, None)
                    yield ev
                return
            async for ev in self._inner.stream(req):
                if first:
                    first = False
                    self._first.observe(time.perf_counter() - started)
                if isinstance(ev, m.Usage):
                    self._usage(obs, model, ev, span)
                elif isinstance(ev, m.Finish):
                    span.set_attribute("gen_ai.response.finish_reasons", [ev.reason])
                elif tracing.capture_content and isinstance(ev, m.TextDelta):
                    text.append(ev.text)
                yield ev
        except m.ProviderError as exc:
            code = exc.code or exc.type
            metrics.UPSTREAM_ERRORS.labels(self.name, code).inc()
            if span is not None:
                tracing.fail(span, code, exc.message)
            raise
        except Exception as exc:
            metrics.UPSTREAM_ERRORS.labels(self.name, type(exc).__name__).inc()
            if span is not None:
                tracing.fail(span, type(exc).__qualname__, str(exc))
            raise
        finally:
            spent = time.perf_counter() - started
            self._latency.observe(spent)
            if obs is not None:
                obs.upstream_s += spent
            if span is not None:
                if text:
                    span.set_attribute("gen_ai.output.messages", orjson.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": "".join(text)}]}]).decode())
                span.end()

    def _usage(self, obs: context.Observation | None, model: str, ev: m.Usage, span: Any) -> None:
        key = obs.tenant[:12] if obs is not None else "unknown"
        counters = self._tokens.get((model, key))
        if counters is None:
            counters = self._tokens[(model, key)] = (metrics.TOKENS.labels(model, key, "input"),
                                                     metrics.TOKENS.labels(model, key, "output"))
        counters[0].inc(ev.input_tokens)
        counters[1].inc(ev.output_tokens)
        if obs is not None:
            obs.input_tokens += ev.input_tokens
            obs.output_tokens += ev.output_tokens
            if obs.accounting is not None:
                obs.accounting.tokens(ev.input_tokens + ev.output_tokens)
        if span is not None:
            span.set_attribute("gen_ai.response.model", model.partition("/")[2])
            span.set_attribute("gen_ai.usage.input_tokens", ev.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", ev.output_tokens)


class ObservedRegistry(Registry):
    """The provider registry handing out ``ObservedProvider`` wrappers."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._observed: dict[str, m.Provider] = {}

    def get(self, name: str) -> m.Provider:
        found = self._observed.get(name)
        if found is None:
            inner = super().get(name)
            found = self._observed[name] = cast(m.Provider, ObservedProvider(inner, self.settings.providers[name].kind))
        return found

    async def aclose(self) -> None:
        self._observed.clear()
        await super().aclose()


# -- the turn loop -----------------------------------------------------------------


def observed_turn(run: Callable[P, AsyncIterator[dict[str, Any]]]) -> Callable[P, AsyncIterator[dict[str, Any]]]:
    """Decorates the engine's turn loop (an event stream): the response span,
    the response id for the access log, and usage accounting per response.
    It only reads the events, so it does not care how the engine is built."""

    @functools.wraps(run)
    async def observed(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[dict[str, Any]]:
        obs = context.current()
        span = None
        parent = None
        done = False
        events = run(*args, **kwargs)
        try:
            async for ev in events:
                # The first event (response.created) names the response: the
                # span starts there; later events cost one set lookup each.
                response = ev.get("response")
                if response is not None:
                    if obs is not None and obs.response_id is None:
                        obs.response_id = response.get("id")
                    if tracing.enabled():
                        span = tracing.start_span("invoke_agent responsa", obs.trace_context if obs else None, {
                            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "responsa",
                            "gen_ai.provider.name": "responsa", "gen_ai.request.model": response.get("model"),
                            "gen_ai.response.id": response.get("id"),
                            "gen_ai.conversation.id": response.get("conversation_id")})
                        if obs is not None:
                            parent, obs.trace_context = obs.trace_context, tracing.context_of(span)
                if ev["type"] in _TERMINAL:
                    done = True
                    _finished(obs, ev["response"], span)
                yield ev
                break
            async for ev in events:
                if ev["type"] in _TERMINAL:
                    done = True
                    _finished(obs, ev["response"], span)
                yield ev
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()  # at once, as if the caller had closed the engine's own generator
            if span is not None:
                if not done:
                    tracing.fail(span, "cancelled", "the turn stopped before its terminal event")
                span.end()
                if obs is not None:
                    obs.trace_context = parent

    return observed


def _finished(obs: context.Observation | None, response: dict[str, Any], span: Any) -> None:
    usage = response.get("usage") or {}
    error = response.get("error") or {}
    if obs is not None:
        if error.get("code"):
            obs.error_code = error["code"]
        if obs.accounting is not None:
            obs.accounting.response(response.get("model") or "unknown", usage.get("input_tokens", 0),
                                    usage.get("output_tokens", 0))
    if span is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.get("input_tokens", 0))
        span.set_attribute("gen_ai.usage.output_tokens", usage.get("output_tokens", 0))
        span.set_attribute("gen_ai.response.finish_reasons", [response.get("status", "unknown")])
        if response.get("status") == "failed":
            tracing.fail(span, str(error.get("code") or "failed"), str(error.get("message") or ""))


# -- tool calls -----------------------------------------------------------------------


def record_tool_call(tool_type: str, item: dict[str, Any], arguments: Any, started: float) -> None:
    """A finished server-side tool call (an ``mcp_call`` item completed in
    place; ``started`` is its ``time.monotonic()`` start): counted by
    outcome, timed, and traced as an ``execute_tool`` span placed at the
    time it ran. Reported after the fact so the call site stays one line."""
    spent = max(time.monotonic() - started, 0.0)
    error = item.get("error") or {}
    outcome = "completed" if not error else {"mcp_tool_execution_error": "tool_error"}.get(
        str(error.get("type")), "protocol_error" if error.get("code") != -32000 else "connection_error")
    metrics.TOOL_CALLS.labels(tool_type, outcome).inc()
    metrics.TOOL_LATENCY.labels(tool_type).observe(spent)
    if not tracing.enabled():
        return
    obs = context.current()
    end = time.time_ns()
    name = str(item.get("name"))
    span = tracing.tracer().start_span(
        f"execute_tool {name}", context=obs.trace_context if obs else None, start_time=end - int(spent * 1e9),
        attributes={k: v for k, v in {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.type": "extension",
            "gen_ai.tool.call.id": item.get("id"), "mcp.method.name": "tools/call" if tool_type == "mcp" else None,
            "responsa.mcp.server_label": item.get("server_label")}.items() if v is not None})
    if tracing.capture_content:
        span.set_attribute("gen_ai.tool.call.arguments", orjson.dumps(arguments, default=str).decode())
        if item.get("output") is not None:
            span.set_attribute("gen_ai.tool.call.result", str(item["output"]))
    if outcome != "completed":
        tracing.fail(span, outcome, str(error.get("message") or ""))
    span.end(end_time=end)
