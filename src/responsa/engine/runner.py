"""Persistence around a turn: the response row exists before the first
event and holds the terminal response before the terminal event is
delivered, so nothing a client was told about is ever missing from the
store. A client that goes away mid-turn leaves a ``failed`` record, never a
row stuck ``in_progress``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from responsa.engine.context import Prepared
from responsa.engine.events import Event
from responsa.engine.loop import TERMINAL, run
from responsa.store.base import Item, Store


def conversation_items(input_items: list[Item], response: dict[str, Any]) -> list[Item]:
    """What a finished turn adds to its conversation: its input then its
    output, appended as one block so concurrent turns never interleave.
    A failed turn adds nothing. ``store=false`` does not change this (as on
    OpenAI): the conversation is state the client asked to keep."""
    if not response.get("conversation_id") or response["status"] not in ("completed", "incomplete"):
        return []
    return [*input_items, *response["output"]]


async def execute(prep: Prepared, store: Store, tenant: str, *,
                  idempotency_key: str | None = None) -> AsyncGenerator[Event, None]:
    turn = prep.turn
    if prep.store:
        await store.create_response(tenant, turn.response, prep.request_json, turn.input_items,
                                    idempotency_key=idempotency_key)
    finished = False
    try:
        async for ev in run(turn):
            if ev["type"] in TERMINAL:
                resp = ev["response"]
                appended = conversation_items(turn.input_items, resp)
                if prep.store:
                    await store.finish_response(tenant, resp, appended)
                elif appended:
                    await store.append_conversation_items(tenant, resp["conversation_id"], appended,
                                                          response_id=resp["id"])
                finished = True
            yield ev
    finally:
        if prep.store and not finished:
            resp = turn.response
            resp["status"] = "failed"
            resp["error"] = {"code": "client_disconnected",
                             "message": "The client disconnected before the response finished."}
            await asyncio.shield(store.finish_response(tenant, resp))
