"""``/v1/responses`` routes: create (JSON or SSE), retrieve (or replay as a
stream), delete, input items."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from responsa.api import sse
from responsa.api.lists import list_body, list_params
from responsa.api.state import AppState, json_body, state
from responsa.engine.background import Reprepare
from responsa.engine.context import Prepared, prepare
from responsa.engine.events import Event
from responsa.engine.loop import TERMINAL
from responsa.engine.replay import replay
from responsa.engine.runner import execute
from responsa.protocol.errors import APIError, invalid, not_found
from responsa.protocol.request import parse_create, whole_number
from responsa.protocol.response import visible
from responsa.store.base import IdempotencyConflict

IDEMPOTENCY_WAIT_S = 30.0


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _failed_status(response: dict[str, Any], status: int | None, type: str | None) -> Response:
    """A non-streamed response that failed upstream becomes an HTTP error a
    client's retry logic understands (502/504/429/400), in the error shape."""
    err = response.get("error") or {}
    return Response(orjson.dumps(APIError(err.get("message", "The response failed."), status=status or 502,
                                          type=type or "server_error", code=err.get("code")).body()),
                    status_code=status or 502, media_type="application/json",
                    headers={"x-response-id": response["id"]})


async def _prepend(first: Event, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    yield first
    async for ev in rest:
        yield ev


def _content(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


async def _wait_for(request: Request, tenant: str, response_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The result of an earlier request with the same idempotency key, which
    must have been the same request: a key reused for a different one is a
    client bug that silently returning the old response would hide. How it
    is delivered (``stream``) may differ: the key names the response."""
    st = state(request)
    if _content(await st.store.get_request(tenant, response_id) or {}) != _content(body):
        raise APIError("This Idempotency-Key was already used for a different request; use a new key.",
                       status=409, code="idempotency_key_reused")
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
    while True:
        found = await st.store.get_response(tenant, response_id)
        if found is None:
            raise not_found(f"Response with id '{response_id}' not found.")
        if found["status"] not in ("queued", "in_progress") or found.get("background"):
            return found
        if time.monotonic() > deadline:
            raise APIError("A request with this Idempotency-Key is still in progress.", status=409,
                           code="idempotency_in_progress")
        await asyncio.sleep(0.05)


def _stream(events: AsyncIterator[Event], include: Collection[str]) -> StreamingResponse:
    async def shown() -> AsyncIterator[Event]:
        async for ev in events:
            yield visible(ev, include)

    return StreamingResponse(sse.encode(shown()), media_type="text/event-stream", headers=sse.HEADERS)


def _show(response: dict[str, Any], include: Collection[str]) -> Response:
    return json_response(visible(response, include))


def _include(request: Request) -> list[str]:
    """``include`` of a GET, in either array style clients send it."""
    return [*request.query_params.getlist("include"), *request.query_params.getlist("include[]")]


async def _replayed(events: list[Event]) -> AsyncIterator[Event]:
    for ev in events:
        yield ev


def repreparer(st: AppState) -> Reprepare:
    """How the background runner rebuilds a queued turn from its stored request."""
    async def again(tenant: str, request_json: dict[str, Any]) -> Prepared:
        return await prepare(parse_create(request_json), tenant=tenant, store=st.store, registry=st.registry,
                             default_model=st.settings.default_model, compaction_key=st.compaction_key)
    return again


async def _create_background(request: Request, st: AppState, tenant: str, prep: Prepared,
                             stream: bool, include: list[str]) -> Response:
    """Returns at once (``queued``), or follows the job's events as they are stored."""
    idem = request.headers.get("idempotency-key")
    try:
        queued = await st.runner.submit(tenant, prep, idempotency_key=idem)
    except IdempotencyConflict as dup:
        queued = await _wait_for(request, tenant, dup.response_id, prep.request_json)
    if stream:
        return _stream(st.runner.follow(tenant, queued["id"], -1), include)
    return _show(queued, include)


async def create(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    req = parse_create(await json_body(request, st.settings.max_body_bytes))
    prep = await prepare(req, tenant=tenant, store=st.store, registry=st.registry,
                         default_model=st.settings.default_model, compaction_key=st.compaction_key)
    include = req.include or []
    if req.background:
        return await _create_background(request, st, tenant, prep, bool(req.stream), include)
    idem = request.headers.get("idempotency-key") if prep.store else None
    events = execute(prep, st.store, tenant, idempotency_key=idem, deferred=not req.stream)
    try:
        first = await anext(events)
    except IdempotencyConflict as dup:
        earlier = await _wait_for(request, tenant, dup.response_id, prep.request_json)
        if req.stream:
            return _stream(_replayed(replay(earlier)), include)
        if earlier["status"] == "failed":
            return _failed_status(earlier, None, None)
        return _show(earlier, include)
    if req.stream:
        return _stream(_prepend(first, events), include)
    final: dict[str, Any] = first["response"]
    async for ev in events:
        if ev["type"] in TERMINAL:
            final = ev["response"]
    failure = prep.turn.failure
    if final["status"] == "failed" and failure is not None:
        return _failed_status(final, failure.status, failure.type)
    return _show(final, include)


async def _stored(request: Request) -> tuple[AppState, str, str, dict[str, Any]]:
    """The state, tenant, id and stored Response a ``{response_id}`` route names, or a 404."""
    st = state(request)
    tenant = st.tenant(request)
    rid = request.path_params["response_id"]
    found = await st.store.get_response(tenant, rid)
    if found is None:
        raise not_found(f"Response with id '{rid}' not found.", "response_id")
    return st, tenant, rid, found


async def retrieve(request: Request) -> Response:
    st, tenant, rid, found = await _stored(request)
    if request.query_params.get("stream") in ("true", "1"):
        after = request.query_params.get("starting_after")
        cursor = -1 if after is None else whole_number(after.removeprefix("-"))
        if cursor is None:
            raise invalid("'starting_after' must be an integer sequence number.", "starting_after")
        if after is not None and after.startswith("-"):
            cursor = -cursor
        if found.get("background"):
            return _stream(st.runner.follow(tenant, rid, cursor), _include(request))
        events = [ev for ev in replay(found) if ev["sequence_number"] > cursor]
        return _stream(_replayed(events), _include(request))
    return _show(found, _include(request))


async def cancel(request: Request) -> Response:
    st, tenant, _, found = await _stored(request)
    if not found.get("background"):
        raise APIError("Only background responses can be cancelled.", param="response_id", code=None)
    return _show(await st.runner.cancel(tenant, found), _include(request))


async def delete(request: Request) -> Response:
    st = state(request)
    rid = request.path_params["response_id"]
    if not await st.store.delete_response(st.tenant(request), rid):
        raise not_found(f"Response with id '{rid}' not found.", "response_id")
    return json_response({"id": rid, "object": "response.deleted", "deleted": True})


async def input_items(request: Request) -> Response:
    st = state(request)
    rid = request.path_params["response_id"]
    after, before, limit, order = list_params(request)
    result = await st.store.list_input_items(st.tenant(request), rid, after=after, before=before, limit=limit,
                                             order=order)
    if result is None:
        raise not_found(f"Response with id '{rid}' not found.", "response_id")
    return json_response(list_body(result.data, result.has_more))


routes = [
    Route("/v1/responses", create, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/cancel", cancel, methods=["POST"]),
    Route("/v1/responses/{response_id}/input_items", input_items, methods=["GET"]),
]
