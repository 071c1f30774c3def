"""The turn loop: call the model, translate its events, run server-side
tools, call the model again, until a final answer, a client-side function
call, or a limit. Ends with exactly one terminal event."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from responsa.engine.events import Event, EventBuilder, ToolRoute
from responsa.protocol.response import TERMINAL as TERMINAL
from responsa.protocol.response import Response, empty_usage
from responsa.providers import base as m
from responsa.tools.functions import check_calls

log = logging.getLogger("responsa.engine")



class ServerTools(Protocol):
    """Tools the server runs itself (MCP). The builder turns model calls to
    the names in ``routes()`` into ``mcp_call`` items (or approval requests);
    the engine hands those to ``execute``; everything else goes back to the
    client."""

    def prepare(self, builder: EventBuilder, context: list[dict[str, Any]]) -> AsyncIterator[Event]:
        """Before the first model call: list tools (``mcp_list_tools`` items),
        run calls the client approved, and rewrite ``context`` in place into
        what a model understands (function calls and outputs)."""
        ...

    def routes(self) -> dict[str, ToolRoute]:
        """Model-facing tool name -> server tool (valid after ``prepare``)."""
        ...

    def definitions(self) -> list[dict[str, Any]]:
        """Function tool definitions the model sees (valid after ``prepare``)."""
        ...

    def execute(self, calls: list[tuple[int, dict[str, Any]]], builder: EventBuilder) -> AsyncIterator[Event]:
        """Run these open ``mcp_call`` items (output index, item) and finish them."""
        ...

    def model_view(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``items`` as the model should see them next step."""
        ...

    async def aclose(self) -> None: ...


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
        # Background: created (status queued) first, as OpenAI's SDK expects
        # every stream to begin with response.created.
        response["status"] = "queued"
        yield b.snapshot("response.created")
        yield b.snapshot("response.queued")
    response["status"] = "in_progress"
    if not turn.queued:
        yield b.snapshot("response.created")
    yield b.snapshot("response.in_progress")
    usage = empty_usage()
    tools = turn.server_tools
    context = list(turn.request.items)
    request = turn.request
    b.single_call = not request.parallel_tool_calls
    max_calls = response.get("max_tool_calls")
    calls_made = 0
    status, reason = "completed", None
    try:
        if tools is not None:
            async for ev in tools.prepare(b, context):
                yield ev
            b.routes = tools.routes()
            request = replace(request, tools=[*request.tools, *tools.definitions()])
        step = 0
        while True:
            finish: m.Finish | None = None
            first_new = len(b.output)
            # A forced tool_choice applies to the first step only: after the
            # server ran the forced tool, the model must be free to answer.
            step_request = replace(request, items=context,
                                   tool_choice=request.tool_choice if step == 0 else "auto")
            async for mev in _model_step(turn, step_request):
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
            problem = check_calls(turn.request, new_items, forced=step == 0)
            if problem is not None:
                raise m.ProviderError(problem, code="invalid_tool_call", retryable=False)
            step += 1
            server_calls = b.take_server_calls()
            if tools is None:
                break
            allowed = len(server_calls) if max_calls is None else max(0, max_calls - calls_made)
            calls_made += min(allowed, len(server_calls))
            async for ev in tools.execute(server_calls[:allowed], b):
                yield ev
            for index, item in server_calls[allowed:]:
                item["status"] = "incomplete"
                for ev in b.finish_server_call(index, item):
                    yield ev
            if len(server_calls) > allowed:
                status, reason = "incomplete", "max_tool_calls"
                break
            if not server_calls or any(it["type"] in ("function_call", "mcp_approval_request") for it in new_items):
                break
            context.extend(tools.model_view(new_items))
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
    finally:
        if tools is not None:
            await tools.aclose()
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
