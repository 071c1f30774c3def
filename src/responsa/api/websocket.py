"""WebSocket mode (Open Responses): ``GET /v1/responses`` upgraded.

Each client frame ``{"type": "response.create", ...}`` is one turn, run
through the same engine path as ``POST /v1/responses`` (so ``store: true``
turns persist exactly the same way); its events go out as JSON text frames,
ending with exactly one terminal event, or one error frame if the turn
could not start. Turns on a connection run one at a time, and the socket
stays open after an error: only the client closes it.

The connection keeps the full context of its latest responses, which is
how ``store: false`` responses can be continued on the same connection but
nowhere else. A continuation that fails evicts the response it continued,
as the spec requires, so a client cannot keep building on a broken chain.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from responsa.api.boundary import check_raw
from responsa.api.errors import error_response
from responsa.api.state import AppState, state
from responsa.protocol import shape
from responsa.protocol.errors import APIError, ServerError, invalid, ws_frame
from responsa.protocol.events import TERMINAL
from responsa.protocol.request import parse_create
from responsa.protocol.response import visible
from responsa.protocol.types import Item

log = logging.getLogger("responsa.websocket")

CACHE_SIZE = 32
"""Responses a connection can continue from its own memory (the latest ones)."""
CONNECTION_LIMIT_S = 3600.0
"""The spec's 60-minute connection limit, after which the server sends
``websocket_connection_limit_reached`` and closes."""


def error_frame(exc: APIError) -> bytes:
    return orjson.dumps(ws_frame(exc))


def _request_body(raw: str | bytes | None) -> dict[str, Any]:
    frame = shape.websocket_frame(raw)
    check_raw(raw or b"", frame)  # ids with NUL: the 404/400 any HTTP body gets
    return shape.websocket_create(frame)


def _options(body: dict[str, Any]) -> tuple[str | None, bool]:
    """The WebSocket-only keys of a ``response.create`` frame: ``stream_id``
    (echoed on every event of the turn, so a client can tell streams apart;
    turns on one socket still run one after the other) and ``generate``
    (``false``: set up the turn's context, stored and continuable, without
    calling the model: the response completes with no output)."""
    stream_id = body.pop("stream_id", None)
    if stream_id is not None and not isinstance(stream_id, str):
        raise invalid("Invalid type for 'stream_id': expected a string.", "stream_id", "invalid_type")
    generate = body.pop("generate", True)
    if not isinstance(generate, bool):
        raise invalid("Invalid type for 'generate': expected a boolean.", "generate", "invalid_type")
    return stream_id, generate


class _Connection:
    def __init__(self, ws: WebSocket, st: AppState, tenant: str) -> None:
        self.ws = ws
        self.st = st
        self.tenant = tenant
        self.cache: OrderedDict[str, list[Item]] = OrderedDict()

    def _remember(self, response_id: str, context: list[Item]) -> None:
        self.cache[response_id] = context
        self.cache.move_to_end(response_id)
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)

    async def turn(self, raw: str | bytes | None) -> None:
        prev_id: str | None = None
        try:
            body = _request_body(raw)
            stream_id, generate = _options(body)
            req = parse_create(body)
            prev_id = req.previous_response_id
            cached = self.cache.get(prev_id) if prev_id is not None else None
            engine = self.st.engine
            history = cached if cached is not None else await engine.load_history(self.tenant, prev_id)
            prep = await engine.prepare(req, self.tenant, history=history)
            prep.turn.generate = generate
        except APIError as exc:
            self._evict(prev_id)
            await self.ws.send_text(error_frame(exc).decode())
            return
        # A failed turn ends with ``response.failed`` alone (it carries the error): a client ends a
        # turn at the first error frame, so an ``error`` frame too would shift every later turn by one.
        events = self.st.engine.run(prep, self.tenant, error_event=False)
        try:
            async for ev in events:
                if ev["type"] in TERMINAL:
                    self._finish(prev_id, ev["response"], [*history, *prep.turn.input_items])
                frame = visible(ev, req.include or [])
                if stream_id is not None:
                    frame = {**frame, "stream_id": stream_id}
                await self.ws.send_text(orjson.dumps(frame).decode())
        finally:
            await events.aclose()

    def _finish(self, prev_id: str | None, response: dict[str, Any], context: list[Item]) -> None:
        if response["status"] == "failed":
            self._evict(prev_id)
        else:
            self._remember(response["id"], [*context, *response["output"]])

    def _evict(self, prev_id: str | None) -> None:
        if prev_id is not None:
            self.cache.pop(prev_id, None)


async def endpoint(ws: WebSocket) -> None:
    st = state(ws)
    try:
        tenant = st.tenant(ws)
    except APIError as exc:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(error_response(exc))
        else:
            await ws.close(code=1008, reason=exc.message[:120])
        return
    await ws.accept()
    conn = _Connection(ws, st, tenant)
    deadline = time.monotonic() + CONNECTION_LIMIT_S
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                await ws.send_text(error_frame(APIError(
                    f"WebSocket connections are limited to {CONNECTION_LIMIT_S / 60:g} minutes: open a new "
                    "connection to continue.", code="websocket_connection_limit_reached")).decode())
                await ws.close(code=1000)
                return
            if message["type"] == "websocket.disconnect":
                return
            try:
                await conn.turn(message.get("text") if message.get("text") is not None else message.get("bytes"))
            except WebSocketDisconnect:
                raise
            except Exception:
                log.exception("websocket turn failed")
                await ws.send_text(error_frame(ServerError()).decode())
    except WebSocketDisconnect:
        return


routes = [WebSocketRoute("/v1/responses", endpoint)]
