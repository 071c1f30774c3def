"""``POST /v1/messages`` (and ``/v1/messages/count_tokens``): the Anthropic
Messages front door. Translates (``protocol.messages``), runs the one
``Engine`` like every other door, translates back. Its errors, wherever
they are raised, are rendered in Anthropic's shape (``protocol.errors.
body_for`` picks the shape by path). Nothing is stored: the Messages API
has no ``store`` and no stored-object API to read a message back from."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api import sse
from responsa.api.state import json_body, state
from responsa.engine import tokens
from responsa.engine.context import Prepared
from responsa.engine.engine import failure
from responsa.protocol import messages as M
from responsa.protocol.errors import ResponsaError, anthropic_body
from responsa.protocol.request import parse_create
from responsa.protocol.types import Event


async def _prepare(request: Request, count_only: bool = False) -> tuple[M.MessagesRequest, Prepared, str]:
    st = state(request)
    tenant = st.tenant(request)
    msg = M.parse(await json_body(request, st.settings.max_body_bytes), count_only=count_only)
    try:
        req = parse_create(msg.body).model_copy(update={"max_output_tokens": msg.max_tokens})
        return msg, await st.engine.prepare(req, tenant, enforce_window=not count_only), tenant
    except ResponsaError as exc:
        raise M.rename_param(exc, msg) from None


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def create(request: Request) -> Response:
    msg, prep, tenant = await _prepare(request)
    engine = state(request).engine
    if not msg.stream:
        final = await engine.respond(prep, tenant)
        error = failure(final)
        if error is not None:
            raise error
        return _json(M.message(final, msg))
    events: AsyncIterator[Event] = engine.run(prep, tenant)
    head = await sse.opening(events)
    if (error := sse.opening_failure(head)) is not None:
        raise error
    encoder = M.StreamEncoder(msg)
    frames = sse.translate(head, events, lambda ev: map(sse.frame, encoder.feed(ev)),
                           lambda exc: sse.frame(anthropic_body(exc)))
    return sse.EventStream(frames)


async def count_tokens(request: Request) -> Response:
    _, prep, _ = await _prepare(request, count_only=True)
    r = prep.turn.request
    return _json({"input_tokens": tokens.count(r.items, r.instructions, r.tools, r.model)})


routes = [Route("/v1/messages", create, methods=["POST"]),
          Route("/v1/messages/count_tokens", count_tokens, methods=["POST"])]
