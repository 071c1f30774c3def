"""The turn loop: call the model, translate its events, run server-side
tools, call the model again, until a final answer, a client-side function
call, or a limit. Ends with exactly one terminal event."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from responsa.engine.events import Event, EventBuilder
from responsa.protocol.response import Response, empty_usage
from responsa.providers import base as m

log = logging.getLogger("responsa.engine")

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ServerTools(Protocol):
    """Tools the server runs itself (MCP). The engine asks it which calls
    are its own and hands those over; the rest go back to the client."""

    def handles(self, name: str) -> bool: ...

    def prepare(self, builder: EventBuilder) -> AsyncIterator[Event]:
        """Events before the first model call (e.g. ``mcp_list_tools`` items)."""
        ...

    def execute(self, calls: list[dict[str, Any]], builder: EventBuilder,
                context: list[dict[str, Any]]) -> AsyncIterator[Event]:
        """Run ``calls``, emit their items, append what the model should see to ``context``."""
        ...

    def pending_approval(self) -> bool:
        """True when the turn must stop and wait for the client's approval."""
        ...


@dataclass(slots=True)
class Candidate:
    provider: m.Provider
    model: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Turn:
    """A response ready to run: everything validated and resolved."""

    response: Response
    request: m.ModelRequest
    candidates: list[Candidate]
    input_items: list[dict[str, Any]]
    server_tools: ServerTools | None = None
    obfuscate: bool = False
    queued: bool = False
    failure: m.ProviderError | None = None
    """Set when the turn failed: the HTTP status and error type to report."""


class TurnFailed(Exception):
    def __init__(self, error: m.ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


async def _model_step(turn: Turn, req: m.ModelRequest) -> AsyncIterator[m.ModelEvent]:
    """Stream one model call, falling back to the next candidate on a
    retryable failure, but only while nothing has been emitted yet."""
    last: m.ProviderError | None = None
    for cand in turn.candidates:
        step = replace(req, model=cand.model, extra={**req.extra, **cand.settings})
        started = False
        try:
            async for ev in cand.provider.stream(step):
                started = True
                yield ev
            return
        except m.ProviderError as exc:
            if started or not exc.retryable:
                raise
            log.warning("provider %s failed (%s); trying the next model", cand.provider.name, exc.message)
            last = exc
    assert last is not None
    raise last


def _add_usage(usage: dict[str, Any], u: m.Usage) -> None:
    usage["input_tokens"] += u.input_tokens
    usage["output_tokens"] += u.output_tokens
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    usage["input_tokens_details"]["cached_tokens"] += u.cached_tokens
    usage["output_tokens_details"]["reasoning_tokens"] += u.reasoning_tokens


async def run(turn: Turn) -> AsyncIterator[Event]:
    response = turn.response
    b = EventBuilder(response, obfuscate=turn.obfuscate)
    if turn.queued:
        yield b.snapshot("response.queued")
    response["status"] = "in_progress"
    if not turn.queued:
        yield b.snapshot("response.created")
    yield b.snapshot("response.in_progress")
    usage = empty_usage()
    tools = turn.server_tools
    context = list(turn.request.items)
    max_calls = response.get("max_tool_calls")
    calls_made = 0
    status, reason = "completed", None
    try:
        if tools is not None:
            async for ev in tools.prepare(b):
                yield ev
        while True:
            finish: m.Finish | None = None
            first_new = len(b.output)
            async for mev in _model_step(turn, replace(turn.request, items=context)):
                if isinstance(mev, m.Usage):
                    _add_usage(usage, mev)
                elif isinstance(mev, m.Finish):
                    finish = mev
                else:
                    for ev in b.feed(mev):
                        yield ev
            if finish is None:
                raise m.ProviderError("The upstream stream ended without finishing the response.")
            cut = finish.reason in ("length", "content_filter")
            for ev in b.close_open("incomplete" if cut else "completed"):
                yield ev
            if cut:
                status = "incomplete"
                reason = "max_output_tokens" if finish.reason == "length" else "content_filter"
                break
            new_items = b.output[first_new:]
            calls = [it for it in new_items if it["type"] == "function_call"]
            if tools is None or not calls or not all(tools.handles(c["name"]) for c in calls):
                break
            if max_calls is not None and calls_made + len(calls) > max_calls:
                status, reason = "incomplete", "max_tool_calls"
                break
            calls_made += len(calls)
            context.extend(it for it in new_items if it["type"] != "function_call")
            async for ev in tools.execute(calls, b, context):
                yield ev
            if tools.pending_approval():
                break
    except m.ProviderError as exc:
        for ev in b.close_open("incomplete"):
            yield ev
        for ev in _fail(turn, b, usage, exc):
            yield ev
        return
    except Exception:
        log.exception("response %s failed", response["id"])
        for ev in b.close_open("incomplete"):
            yield ev
        for ev in _fail(turn, b, usage, m.ProviderError(
                "The server had an error while processing your request.", status=500, code="server_error")):
            yield ev
        return
    response["usage"] = usage
    response["status"] = status
    if status == "incomplete":
        response["incomplete_details"] = {"reason": reason}
    else:
        response["completed_at"] = int(time.time())
    yield b.event(f"response.{status}", response=response)


def _fail(turn: Turn, b: EventBuilder, usage: dict[str, Any], exc: m.ProviderError) -> list[Event]:
    """The spec's failure sequence: an ``error`` event, then ``response.failed``."""
    turn.failure = exc
    response = b.response
    response["status"] = "failed"
    response["usage"] = usage
    response["error"] = {"code": exc.code, "message": exc.message}
    error = b.event("error", error={"type": exc.type, "code": exc.code, "message": exc.message,
                                    "param": exc.param})
    return [error, b.event("response.failed", response=response)]
