"""The turn loop: call the model, translate its events, run server-side
tools, call the model again, until a final answer, a client-side call, or
a limit. Ends with exactly one terminal event, built by the turn's
``EventBuilder`` (a failure is the ``error`` + ``response.failed`` events
whose response carries the error: a value, never a side channel)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from responsa.engine.events import EventBuilder
from responsa.observability.instrument import observed_turn
from responsa.protocol.errors import ResponsaError, ServerError, UpstreamError
from responsa.protocol.response import empty_usage
from responsa.protocol.types import Event, Item, Response
from responsa.providers import base as m
from responsa.tools.base import ToolRoute, Toolset
from responsa.tools.functions import check_calls

log = logging.getLogger("responsa.engine")

_running = 0
"""Turns running in this process now (foreground and background)."""


def alone() -> bool:
    """At most one turn is running here: the store may then do its work on
    the event loop's thread instead of queueing it for group commit
    (``store.sqlite.SQLiteDriver``), since there is nothing to group with."""
    return _running <= 1



@dataclass(slots=True)
class Candidate:
    provider: m.Provider
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    """The canonical ``provider/model`` the Response names once this candidate answers."""


@dataclass(slots=True)
class Turn:
    """A response ready to run: everything validated and resolved."""

    response: Response
    request: m.ModelRequest
    candidates: list[Candidate]
    input_items: list[Item]
    builder: EventBuilder
    """Makes every event of this turn, including the ending of a turn
    stopped from outside (``EventBuilder.stop``)."""
    toolsets: list[Toolset] = field(default_factory=list)
    queued: bool = False
    max_turns: int | None = None
    """Model calls allowed in this turn (Chat Completions' Dedalus ``max_turns``):
    reaching it while server-run tools wait for the model ends ``incomplete`` (``max_turns``)."""
    compaction: Item | None = None
    """A ``compaction`` item of the context, output first (a
    ``compaction_trigger`` input, or ``context_management``'s threshold crossed)."""
    compact_only: bool = False
    """The turn only compacts (``compaction_trigger``): no model call."""
    generate: bool = True
    """False (WebSocket ``generate: false``): no model call; the response
    completes with no output and its context can be continued."""


async def _model_step(turn: Turn, req: m.ModelRequest) -> AsyncIterator[m.ModelEvent]:
    """Stream one model call, falling back to the next candidate on a
    retryable failure, but only while nothing has been emitted yet."""
    last: ResponsaError | None = None
    for cand in turn.candidates:
        # The request as prepared already names the first candidate's model.
        step = req if cand.model == req.model and not cand.settings else replace(
            req, model=cand.model, extra={**req.extra, **cand.settings})
        started = False
        try:
            async for ev in cand.provider.stream(step):
                if not started and last is not None and cand.name:
                    turn.response["model"] = cand.name  # a fallback answered: the Response names it
                started = True
                yield ev
            return
        except ResponsaError as exc:
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


@observed_turn
async def run(turn: Turn) -> AsyncIterator[Event]:
    global _running
    _running += 1
    try:
        b = turn.builder
        for ev in b.begin(queued=turn.queued):
            yield ev
        usage = empty_usage()
        toolsets = turn.toolsets
        context = list(turn.request.items)
        request = turn.request
        b.single_call = not request.parallel_tool_calls
        max_calls = turn.response.get("max_tool_calls")
        calls_made = 0
        status, reason = "completed", None
        try:
            if turn.compaction is not None:
                for ev in b.feed(m.HostedItem(turn.compaction)):
                    yield ev
            if turn.compact_only or not turn.generate:
                for ev in b.complete("completed", usage, completed_at=int(time.time())):
                    yield ev
                return
            routes: dict[str, ToolRoute] = {}
            owners: dict[str, Toolset] = {}
            definitions: list[dict[str, Any]] = []
            for ts in toolsets:
                async for ev in ts.prepare(b, context):
                    yield ev
                for name, route in ts.routes().items():
                    routes[name] = route
                    owners[route.kind.type] = ts
                definitions += ts.definitions()
                annotate = getattr(ts, "annotate", None)
                if annotate is not None:
                    b.annotators.append(annotate)
            b.routes = routes
            if definitions:
                request = replace(request, tools=[*request.tools, *definitions])
            step = 0
            while True:
                finish: m.Finish | None = None
                b.new_step()
                # A forced tool_choice applies to the first step only: after the
                # server ran the forced tool, the model must be free to answer.
                # Once max_tool_calls built-in calls ran, the built-in tools are no
                # longer offered (OpenAI: "further attempts to call a tool by the
                # model will be ignored"), so the model answers with what it has.
                # (The first step of a turn without toolsets sends the request as prepared.)
                if step > 0 and max_calls is not None and calls_made >= max_calls and definitions:
                    request = replace(request, tools=[t for t in request.tools if t not in definitions])
                    definitions = []
                step_request = request if step == 0 and not toolsets else replace(
                    request, items=context, tool_choice=request.tool_choice if step == 0 else "auto")
                first_new = len(b.output)
                async for mev in _model_step(turn, step_request):
                    if isinstance(mev, m.Usage):
                        _add_usage(usage, mev)
                    elif isinstance(mev, m.Finish):
                        finish = mev
                    else:
                        for ev in b.feed(mev):
                            yield ev
                if finish is None:
                    raise UpstreamError("The upstream stream ended without finishing the response.")
                cut = finish.reason in ("length", "content_filter")
                for ev in b.close_open("incomplete" if cut else "completed"):
                    yield ev
                if cut:
                    status = "incomplete"
                    reason = "max_output_tokens" if finish.reason == "length" else "content_filter"
                    break
                calls = b.step_calls
                check_calls(request, [item for _, item in calls], forced=step == 0)
                step += 1
                server_calls = b.take_server_calls()
                if not server_calls:
                    break
                allowed = len(server_calls) if max_calls is None else max(0, max_calls - calls_made)
                calls_made += min(allowed, len(server_calls))
                run_now = server_calls[:allowed]
                for ts in toolsets:
                    mine = [c for c in run_now if owners.get(c[1]["type"]) is ts]
                    if mine:
                        async for ev in ts.execute(mine, b):
                            yield ev
                for index, item in server_calls[allowed:]:
                    item["status"] = "incomplete"
                    for ev in b.finish_item(index, item):
                        yield ev
                if len(server_calls) > allowed:
                    status, reason = "incomplete", "max_tool_calls"
                    break
                if any(not kind.executes for kind, _ in calls):
                    break  # a call the client answers ends the turn
                if turn.max_turns is not None and step >= turn.max_turns:
                    status, reason = "incomplete", "max_turns"
                    break
                new_items = b.output[first_new:]
                for ts in toolsets:
                    new_items = ts.model_view(new_items)
                context.extend(new_items)
        except ResponsaError as exc:
            for ev in b.fail(exc, usage):
                yield ev
            return
        except Exception:
            log.exception("response %s failed", turn.response["id"])
            for ev in b.fail(ServerError(), usage):
                yield ev
            return
        finally:
            for ts in toolsets:
                await ts.aclose()
        for ev in b.complete(status, usage, reason=reason, completed_at=int(time.time())):
            yield ev
    finally:
        _running -= 1
