"""``/v1/responses`` routes: create (JSON or SSE), retrieve (or replay as a
stream), cancel, delete, input items. Each route translates HTTP into an
``Engine`` call and its result back; the engine does the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responsa.api import sse
from responsa.api.errors import error_response
from responsa.api.lists import list_body, list_params
from responsa.api.state import AppState, json_body, state
from responsa.engine.context import Prepared
from responsa.engine.engine import failure
from responsa.protocol.errors import invalid, not_found
from responsa.protocol.request import parse_create, whole_number
from responsa.protocol.response import visible
from responsa.protocol.types import Event
from responsa.store.base import IdempotencyConflict


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _frames(events: AsyncIterator[Event], include: Collection[str], head: list[Event]) -> AsyncIterator[bytes]:
    """``head`` (events a route already pulled) then the rest: here rather
    than through ``sse.prepend``, one generator fewer for every event."""
    frame = sse.frame
    for ev in head:
        yield frame(visible(ev, include))
    async for ev in events:
        yield frame(visible(ev, include))
    yield sse.DONE


def _stream(events: AsyncIterator[Event], include: Collection[str], head: list[Event] | None = None) -> sse.EventStream:
    return sse.EventStream(_frames(events, include, head or []))


def _show(response: dict[str, Any], include: Collection[str]) -> Response:
    """A finished response as JSON; a failed one as the HTTP error it failed
    with (502/429/400...), which a client's retry logic understands."""
    error = failure(response)
    if error is not None:
        out = error_response(error)
        out.headers["x-response-id"] = response["id"]
        return out
    return json_response(visible(response, include))


def _include(request: Request) -> list[str]:
    """``include`` of a GET, in either array style clients send it."""
    return [*request.query_params.getlist("include"), *request.query_params.getlist("include[]")]


async def _create_background(request: Request, st: AppState, tenant: str, prep: Prepared,
                             stream: bool, include: list[str]) -> Response:
    """Returns at once (``queued``), or follows the job's events as they are stored."""
    idem = request.headers.get("idempotency-key")
    try:
        queued = await st.engine.submit(prep, tenant, idempotency_key=idem)
    except IdempotencyConflict as dup:
        queued = await st.engine.earlier(tenant, dup.response_id, prep.request_json)
    if stream:
        return _stream(st.engine.follow(tenant, queued["id"], -1), include)
    return json_response(visible(queued, include))


async def create(request: Request) -> Response:
    st = state(request)
    tenant = st.tenant(request)
    req = parse_create(await json_body(request, st.settings.max_body_bytes))
    prep = await st.engine.prepare(req, tenant)
    include = req.include or []
    if req.background:
        return await _create_background(request, st, tenant, prep, bool(req.stream), include)
    idem = request.headers.get("idempotency-key") if prep.store else None
    try:
        if not req.stream:
            return _show(await st.engine.respond(prep, tenant, idempotency_key=idem), include)
        events = st.engine.run(prep, tenant, idempotency_key=idem)
        first = await anext(events)
    except IdempotencyConflict as dup:
        earlier = await st.engine.earlier(tenant, dup.response_id, prep.request_json)
        if req.stream:
            return _stream(st.engine.events(tenant, earlier), include)
        return _show(earlier, include)
    return _stream(events, include, [first])


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
    st, tenant, _, found = await _stored(request)
    if request.query_params.get("stream") in ("true", "1"):
        after = request.query_params.get("starting_after")
        cursor = -1 if after is None else whole_number(after.removeprefix("-"))
        if cursor is None:
            raise invalid("'starting_after' must be an integer sequence number.", "starting_after")
        if after is not None and after.startswith("-"):
            cursor = -cursor
        return _stream(st.engine.events(tenant, found, cursor), _include(request))
    return json_response(visible(found, _include(request)))


async def cancel(request: Request) -> Response:
    st, tenant, _, found = await _stored(request)
    return json_response(visible(await st.engine.cancel(tenant, found), _include(request)))


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
