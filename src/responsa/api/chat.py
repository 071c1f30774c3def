"""``POST /v1/chat/completions``: the Chat Completions front door (with the
Dedalus extensions). It translates the request (``protocol.chat.parse``),
runs it on the one ``Engine`` exactly as ``POST /v1/responses`` does, and
translates the result back (a ``chat.completion``, or ``chat.completion.chunk``
SSE frames ending with ``data: [DONE]``). No tool loop, store or provider
code of its own: ``n`` > 1 choices are ``n`` turns of the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api import sse
from responsa.api.errors import error_response
from responsa.api.responses import json_response
from responsa.api.state import json_body, state
from responsa.engine.context import Prepared
from responsa.engine.engine import Engine, failure
from responsa.protocol import chat as C
from responsa.protocol import events as E
from responsa.protocol.errors import ResponsaError, error_body
from responsa.protocol.request import parse_create
from responsa.protocol.types import Event
from responsa.protocol.types import Response as ResponseJson
from responsa.store.base import IdempotencyConflict


async def _prepare(engine: Engine, chat: C.ChatRequest, tenant: str) -> Prepared:
    """The chat request as an engine turn; its 400s name the chat parameters."""
    try:
        req = parse_create(chat.body)
        if chat.max_output_tokens is not None:
            # Chat allows any positive limit (the Responses API's minimum is 16).
            req = req.model_copy(update={"max_output_tokens": chat.max_output_tokens})
        return await engine.prepare(req, tenant)
    except ResponsaError as exc:
        raise C.rename_param(exc, chat) from None


def _show(finals: list[ResponseJson], chat: C.ChatRequest) -> Response:
    """The finished turns (one per choice) as a completion; the first failed
    one as the HTTP error it failed with."""
    for final in finals:
        error = failure(final)
        if error is not None:
            out = error_response(error)
            out.headers["x-response-id"] = final["id"]
            return out
    return json_response(C.completion(finals, chat))


async def _choices(engine: Engine, preps: list[Prepared], chat: C.ChatRequest, tenant: str) -> Response:
    """``n`` > 1: every choice is its own turn of the engine, run side by
    side; a stream interleaves their chunks (each with its ``index``) and
    ends with the summed usage. Nothing is stored (``store`` is refused)."""
    if not chat.stream:
        return _show(list(await asyncio.gather(*(engine.respond(p, tenant) for p in preps))), chat)
    runs: list[AsyncIterator[Event]] = [engine.run(p, tenant) for p in preps]
    heads = list(await asyncio.gather(*(sse.opening(r) for r in runs)))
    for head in heads:
        if sse.opening_failure(head) is not None:
            for run in runs:
                await run.aclose()  # type: ignore[attr-defined]
            return _show([head[-1]["response"]], chat)
    encoders = [C.ChunkEncoder(chat, i, heads[0][0]["response"]["id"]) for i in range(chat.n)]

    async def chunks() -> AsyncIterator[bytes]:
        finals: list[ResponseJson] = []
        async for i, ev in sse.merge([sse.prepend(h, r) for h, r in zip(heads, runs, strict=True)]):
            if ev["type"] in E.TERMINAL:
                finals.append(ev["response"])
                if (exc := failure(ev["response"])) is not None:
                    yield C.encode_chunk(dict(error_body(exc)))
                    continue
            for chunk in encoders[i].feed(ev):
                yield C.encode_chunk(chunk)
        if chat.include_usage:
            yield C.encode_chunk(encoders[0].usage_chunk(finals))
        yield sse.DONE

    return sse.EventStream(chunks())


async def create(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    chat = C.parse(await json_body(request, st.settings.max_body_bytes))
    preps = [await _prepare(st.engine, chat, tenant) for _ in range(chat.n)]
    for p in preps:
        p.turn.max_turns = chat.max_turns
    if chat.n > 1:
        return await _choices(st.engine, preps, chat, tenant)
    prep = preps[0]
    idem = request.headers.get("idempotency-key") if prep.store else None
    head: list[Event] = []
    try:
        if not chat.stream:
            return _show([await st.engine.respond(prep, tenant, idempotency_key=idem)], chat)
        events: AsyncIterator[Event] = st.engine.run(prep, tenant, idempotency_key=idem)
        head = await sse.opening(events)
    except IdempotencyConflict as dup:
        earlier = await st.engine.earlier(tenant, dup.response_id, prep.request_json)
        if not chat.stream:
            return _show([earlier], chat)
        head, events = [], st.engine.events(tenant, earlier)
    if sse.opening_failure(head) is not None:
        return _show([head[-1]["response"]], chat)
    encoder = C.ChunkEncoder(chat)
    chunks = sse.translate(head, events, lambda ev: map(C.encode_chunk, encoder.feed(ev)),
                           lambda exc: C.encode_chunk(dict(error_body(exc))), sse.DONE)
    return sse.EventStream(chunks)


routes = [Route("/v1/chat/completions", create, methods=["POST"])]
