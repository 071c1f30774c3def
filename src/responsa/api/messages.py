"""``POST /v1/messages`` (and ``/v1/messages/count_tokens``): the Anthropic
Messages front door. Translates (``protocol.messages``), runs the one
``Engine`` like every other door, translates back; errors in Anthropic's
shape. Nothing is stored (Messages has no stored-object API)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from responsa.api import sse
from responsa.api.state import json_body, state
from responsa.engine import tokens
from responsa.engine.context import Prepared
from responsa.engine.engine import failure
from responsa.protocol import events as E
from responsa.protocol import messages as M
from responsa.protocol.errors import ResponsaError
from responsa.protocol.request import parse_create
from responsa.protocol.types import Event


def _error(exc: ResponsaError) -> Response:
    return Response(orjson.dumps(M.error_body(exc)), status_code=exc.status, media_type="application/json")


async def _prepare(request: Request, count_only: bool = False) -> tuple[M.MessagesRequest, Prepared, str]:
    st = state(request)
    tenant = st.tenant(request)
    msg = M.parse(await json_body(request, st.settings.max_body_bytes), count_only=count_only)
    req = parse_create(msg.body).model_copy(update={"max_output_tokens": msg.max_tokens})
    return msg, await st.engine.prepare(req, tenant, enforce_window=not count_only), tenant


async def _frames(head: list[Event], rest: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    enc = M.StreamEncoder()

    async for ev in sse.prepend(head, rest):
        if ev["type"] == E.FAILED:
            error = failure(ev["response"])
            if error is not None:
                yield M.frame(M.error_body(error))
            continue
        for out in enc.feed(ev):
            yield M.frame(out)


async def create(request: Request) -> Response:
    try:
        msg, prep, tenant = await _prepare(request)
        engine = state(request).engine
        if not msg.stream:
            final = await engine.respond(prep, tenant)
            error = failure(final)
            if error is not None:
                return _error(error)
            return Response(orjson.dumps(M.message(final)), media_type="application/json")
        events: AsyncIterator[Event] = engine.run(prep, tenant)
        head: list[Event] = []
        async for ev in events:
            head.append(ev)
            if ev["type"] == E.ITEM_ADDED or ev["type"] in E.TERMINAL:
                break
        if head and head[-1]["type"] == E.FAILED:
            error = failure(head[-1]["response"])
            if error is not None:
                return _error(error)
    except ResponsaError as exc:
        return _error(exc)
    return StreamingResponse(_frames(head, events), media_type="text/event-stream", headers=sse.HEADERS)


async def count_tokens(request: Request) -> Response:
    try:
        _, prep, _ = await _prepare(request, count_only=True)
    except ResponsaError as exc:
        return _error(exc)
    r = prep.turn.request
    n = tokens.count(r.items, r.instructions, r.tools, r.model)
    return Response(orjson.dumps({"input_tokens": n}), media_type="application/json")


routes = [Route("/v1/messages", create, methods=["POST"]),
          Route("/v1/messages/count_tokens", count_tokens, methods=["POST"])]
