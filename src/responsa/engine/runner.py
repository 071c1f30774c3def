"""Persistence around a turn: the response row exists before the first
event and holds the terminal response before the terminal event is
delivered, so nothing a client was told about is ever missing from the
store. A client that goes away mid-turn leaves a ``failed`` record, never a
row stuck ``in_progress``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from responsa.engine.context import Prepared
from responsa.engine.events import Event
from responsa.engine.loop import TERMINAL, run
from responsa.store.base import Store


async def execute(prep: Prepared, store: Store, tenant: str, *,
                  idempotency_key: str | None = None) -> AsyncIterator[Event]:
    turn = prep.turn
    if prep.store:
        await store.create_response(tenant, turn.response, prep.request_json, turn.input_items,
                                    idempotency_key=idempotency_key)
    finished = False
    try:
        async for ev in run(turn):
            if ev["type"] in TERMINAL:
                if prep.store:
                    await store.finish_response(tenant, ev["response"])
                finished = True
            yield ev
    finally:
        if prep.store and not finished:
            resp = turn.response
            resp["status"] = "failed"
            resp["error"] = {"code": "client_disconnected",
                             "message": "The client disconnected before the response finished."}
            await asyncio.shield(store.finish_response(tenant, resp))
